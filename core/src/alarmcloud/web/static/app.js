// alarmcloud web UI: progressive behaviour for server-rendered pages. No dependencies, no third-party requests.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function csrf() {
    const m = document.cookie.match(/(?:^|;\s*)ac_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  // fetch JSON from the core API; never throws: {ok, status, data, message}
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(url, { method, headers, credentials: "same-origin",
                               body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      return { ok: false, status: 0, data: null, message: "The server cannot be reached. Check your connection." };
    }
    let data = null;
    const type = res.headers.get("content-type") || "";
    if (type.includes("json")) { try { data = await res.json(); } catch (e) { data = null; } }
    let message = "";
    if (!res.ok) {
      const err = (data && data.error) || {};
      // a route that does not exist (yet) answers Starlette's plain "Not Found"
      if ((res.status === 404 && (!err.message || err.message === "Not Found")) || res.status === 405) {
        message = "This feature is not available on this server yet.";
      } else {
        message = err.message || ("Request failed (" + res.status + ").");
      }
      message = message.charAt(0).toUpperCase() + message.slice(1);
    }
    return { ok: res.ok, status: res.status, data, message, response: res };
  }
  window.alarmcloud = { api, csrf };

  function flash(text, kind) {
    const el = $(".flash");
    if (!el) return;
    el.textContent = text;
    el.className = "flash " + (kind || "ok");
    el.hidden = false;
    clearTimeout(flash.t);
    flash.t = setTimeout(() => { el.hidden = true; }, 6000);
  }

  function showError(form, text) {
    const el = $(".error", form);
    if (el) { el.textContent = text; el.hidden = !text; } else if (text) flash(text, "bad");
  }

  function formObject(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === "submit" || el.type === "button") continue;
      if (el.type === "checkbox") out[el.name] = el.checked;
      else if (el.type === "number") {
        if (el.value !== "") out[el.name] = Number(el.value);
        else if (el.hasAttribute("data-send-empty")) out[el.name] = null;  // empty clears the setting
      }
      else if (el.value !== "" || el.required || el.hasAttribute("data-send-empty")) out[el.name] = el.value;
    }
    return out;
  }

  function busy(form, on) { $$("button", form).forEach((b) => { b.disabled = on; }); }

  // local times for <time datetime>
  function localTimes(root) {
    $$("time[datetime]", root).forEach((t) => {
      const d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) { t.textContent = d.toLocaleString(); t.title = t.getAttribute("datetime"); }
    });
  }

  Object.assign(window.alarmcloud, { flash, showError, busy, localTimes });

  // thumbnails or snapshots that fail to load get a placeholder
  document.addEventListener("error", (e) => {
    const img = e.target;
    if (img && img.tagName === "IMG" && img.hasAttribute("data-fallback")) {
      img.removeAttribute("data-fallback");
      const box = img.closest(".thumb, .snapshot");
      box?.classList.add("no-image");
      if (box && box.matches(".snapshot")) flash("No snapshot: the camera cannot be reached from the server.", "bad");
      img.alt = img.alt || "No picture";
    }
  }, true);

  // a field with data-invalid says in words what it wants when its pattern does not match (not "match the format")
  document.addEventListener("invalid", (e) => {
    const el = e.target;
    if (el && el.dataset && el.dataset.invalid && el.validity.patternMismatch) el.setCustomValidity(el.dataset.invalid);
  }, true);
  document.addEventListener("input", (e) => {
    const el = e.target;
    if (el && el.dataset && el.dataset.invalid) el.setCustomValidity("");
  }, true);

  async function onSubmit(e) {
    const form = e.target;
    // the timeline's day filter means the day in this browser's time zone (its offset on that very day)
    const tz = $("[data-tz]", form);
    if (tz) {
      const day = form.elements.day.value;
      tz.value = day ? String(new Date(day + "T00:00:00").getTimezoneOffset()) : "";
      tz.disabled = !day;
    }
    if (form.matches("[data-api]")) {
      e.preventDefault();
      showError(form, "");
      if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
      busy(form, true);
      const r = await api(form.dataset.method || "POST", form.dataset.api, formObject(form));
      busy(form, false);
      if (!r.ok) return showError(form, (r.status === 401 && form.dataset.wrongPassword) || r.message);
      if (form.dataset.redirect) {
        if (form.dataset.done) sessionStorage.setItem("ac-flash", form.dataset.done);
        location.assign(form.dataset.redirect);
        return;
      }
      if (form.hasAttribute("data-reload")) { sessionStorage.setItem("ac-flash", form.dataset.done || ""); location.reload(); return; }
      if (form.dataset.done) flash(form.dataset.done);
      if (!form.hasAttribute("data-keep")) form.reset();
    } else if (form.matches("[data-signup]")) {
      e.preventDefault();
      showError(form, "");
      busy(form, true);
      const body = formObject(form);
      let r = await api("POST", "/api/v1/auth/register", body);
      if (r.ok) r = await api("POST", "/api/v1/auth/login", body);
      busy(form, false);
      if (!r.ok) return showError(form, r.message);
      location.assign("/cameras?welcome=1");
    } else if (form.matches("[data-feedback]")) {
      e.preventDefault();
      const label = (e.submitter && e.submitter.value) || "rain";
      busy(form, true);
      const r = await api("POST", form.dataset.feedback,
                          { detector: "rain", label, release: form.elements.release.checked });
      busy(form, false);
      if (!r.ok) return showError(form, r.message);
      showError(form, "");
      const txt = label === "rain" ? "Thanks — marked as rain." : "Thanks — marked as not rain.";
      flash(txt + (r.data && r.data.released ? " The clip was released to improve the detector." : ""));
      form.dataset.sent = label;
      const note = $(".sent", form) || form.appendChild(Object.assign(document.createElement("p"), { className: "sent" }));
      note.textContent = txt;
      showTune($("[data-tune]"), r.data && r.data.suggestion);
    } else if (form.matches("[data-snooze]")) {
      e.preventDefault();
      const pick = (e.submitter && e.submitter.value) || "60";
      let minutes = Number(pick);
      if (pick === "morning") {  // the next 7:00 in this browser's time zone
        const now = new Date(), at = new Date(now);
        at.setHours(7, 0, 0, 0);
        if (at <= now) at.setDate(at.getDate() + 1);
        minutes = Math.max(1, Math.ceil((at - now) / 60000));
      }
      const body = { minutes };
      if (form.elements.camera_id.value) body.camera_id = form.elements.camera_id.value;
      busy(form, true);
      const r = await api("PUT", "/api/v1/me/snooze", body);
      busy(form, false);
      if (!r.ok) return showError(form, r.message);
      location.reload();
    } else if (form.matches("[data-add-camera]")) {
      e.preventDefault();
      await addCamera(form);
    } else if (form.matches("[data-add-webhook]")) {
      e.preventDefault();
      await addWebhook(form);
    }
  }
  document.addEventListener("submit", onSubmit);

  // after "Not rain" on a clip the detector called rain: offer the camera's threshold that keeps such clips alarms;
  // after "This was rain" on a clip it did not call rain: offer the threshold that would have caught it
  function showTune(box, sg) {
    if (!box) return;
    box.hidden = !sg;
    if (!sg) return;
    const text = $("[data-tune-text]", box), apply = $("[data-tune-apply]", box);
    const pct = (v) => Math.round(v * 100) + "%";
    showError(box, "");
    if (sg.value === null) {
      text.textContent = sg.reason.charAt(0).toUpperCase() + sg.reason.slice(1) + ".";
      apply.hidden = true;
      return;
    }
    const clips = (n) => `${n} ${n === 1 ? "clip" : "clips"}`;
    const parts = [];
    const lower = sg.direction === "lower";
    if (lower) {
      if (sg.marked_right > 1) parts.push(`${sg.would_catch} of the ${clips(sg.marked_right)} you marked as rain would have been called rain`);
      if (sg.marked_wrong > 0) parts.push(`${sg.would_flag} of the ${clips(sg.marked_wrong)} you marked as not rain would have been called rain wrongly`);
    } else {
      if (sg.marked_wrong > 1) parts.push(`${sg.would_clear} of the ${clips(sg.marked_wrong)} you marked as not rain would have stayed alarms`);
      if (sg.marked_right > 0) parts.push(`${sg.would_miss} of the ${clips(sg.marked_right)} you marked as rain would no longer have been called rain`);
    }
    const more = parts.length ? ` With it, on this camera ${parts.join("; ")}.` : "";
    const verb = lower ? "Lower" : "Raise";
    text.textContent = `The detector was ${pct(sg.score)} sure this clip was rain. ${verb} this camera's rain threshold ` +
      `from ${pct(sg.current)} to ${pct(sg.value)}, so that clips like this one ` +
      (lower ? "are called rain?" : "stay alarms?") + more;
    apply.textContent = `${verb} the threshold to ${pct(sg.value)}`;
    apply.hidden = false;
    apply.onclick = async () => {
      apply.disabled = true;
      const r = await api("PUT", `/api/v1/cameras/${encodeURIComponent(sg.camera_id)}/detectors`,
                          { options: { [sg.detector]: { threshold: sg.value } } });
      apply.disabled = false;
      if (!r.ok) return showError(box, r.message);
      apply.hidden = true;
      text.textContent = `Done: this camera now calls a clip rain from ${pct(sg.value)} on. You can change it on the camera's page.`;
      flash(`Rain threshold of this camera set to ${pct(sg.value)}.`);
    };
  }

  document.addEventListener("click", async (e) => {
    const t = e.target.closest("button, a");
    if (!t) return;
    if (t.matches("[data-logout]")) {
      await api("POST", "/api/v1/auth/logout", {});
      location.assign("/login");
    } else if (t.matches(".menu-toggle")) {
      const open = t.getAttribute("aria-expanded") !== "true";
      t.setAttribute("aria-expanded", String(open));
      $("#nav").classList.toggle("open", open);
    } else if (t.matches("[data-more]")) {
      t.disabled = true;
      t.textContent = "Loading…";
      const res = await fetch(t.dataset.more, { credentials: "same-origin" });
      if (!res.ok) { t.disabled = false; t.textContent = "Load more"; return flash("Could not load more alarms.", "bad"); }
      const html = await res.text();
      const tpl = document.createElement("template");
      tpl.innerHTML = html;
      localTimes(tpl.content);
      const added = document.createElement("div");
      added.append(tpl.content);
      watchMore(added);
      t.closest(".more").replaceWith(...added.childNodes);
      if ($$("[data-pending-id]").length) setTimeout(pollPending, 2000);
    } else if (t.matches("[data-seek]")) {
      const v = $("#player");
      v.currentTime = Number(t.dataset.seek);
      v.play().catch(() => {});
      v.focus();
    } else if (t.matches("[data-delete]")) {
      if (t.dataset.confirm && !confirm(t.dataset.confirm)) return;
      const r = await api("DELETE", t.dataset.delete);
      if (!r.ok) return flash(r.message, "bad");
      if (t.dataset.redirect) location.assign(t.dataset.redirect);
    } else if (t.matches("[data-unsnooze]")) {
      t.disabled = true;
      const r = await api("DELETE", "/api/v1/me/snooze?camera_id=" + encodeURIComponent(t.dataset.unsnooze));
      t.disabled = false;
      if (!r.ok) return flash(r.message, "bad");
      location.reload();
    } else if (t.matches("[data-keep]")) {
      t.disabled = true;
      const r = await api("PATCH", t.dataset.keep, { kept: t.dataset.kept === "true" });
      t.disabled = false;
      if (!r.ok) return flash(r.message, "bad");
      location.reload();  // the card, the badge of kept clips and the use come from the server
    } else if (t.matches("[data-offsite-copy]")) {
      t.disabled = true;
      const r = await api("POST", "/api/v1/me/offsite/backfill", { event_id: t.dataset.offsiteCopy });
      if (!r.ok) { t.disabled = false; return flash(r.message, "bad"); }
      location.reload();  // the card says where the copy stands now
    } else if (t.matches("[data-add-to-case]")) {
      const ids = t.dataset.addToCase ? [t.dataset.addToCase] : $$("[data-pick]").filter((b) => b.checked).map((b) => b.value);
      if (ids.length) addToCase(t, ids);
    } else if (t.matches("[data-share]")) {
      const card = t.closest("section");
      if ($("[data-share-state]", card) && !confirm("Make a new link? The one you sent before stops working.")) return;
      t.disabled = true;
      const r = await api("POST", t.dataset.share, { days: Number($("[data-share-days]", card).value),
                                                     max_downloads: Number($("[data-share-downloads]", card).value) });
      t.disabled = false;
      if (!r.ok) return flash(r.message, "bad");
      const made = $("[data-share-made]", card);
      $("[data-share-url]", made).value = r.data.page_url;  // on the server's public address, as its e-mails
      made.hidden = false;
      $("[data-share-url]", made).select();
      flash("Link made: it works until " + new Date(r.data.expires_at).toLocaleString() + " for " +
            r.data.max_downloads + (r.data.max_downloads === 1 ? " download." : " downloads."));
    } else if (t.matches("[data-copy]")) {
      const src = document.getElementById(t.dataset.copy);
      const text = src.value !== undefined ? src.value : src.textContent;
      try { await navigator.clipboard.writeText(text); } catch (err) { src.select && src.select(); document.execCommand("copy"); }
      t.textContent = "Copied";
      setTimeout(() => { t.textContent = "Copy"; }, 1500);
    } else if (t.matches("[data-credentials]")) {
      if (t.dataset.confirm && !confirm(t.dataset.confirm)) return;
      const r = await api("POST", t.dataset.credentials, {});
      if (!r.ok) return flash(r.message, "bad");
      showCredentials(r.data);
    } else if (t.matches("[data-setup]")) {
      t.disabled = true;
      const r = await api("POST", t.dataset.setup, {});
      t.disabled = false;
      const out = $("#setup-result");
      out.hidden = false;
      out.className = r.ok ? "ok" : "error";
      out.textContent = r.ok ? "Done: the camera now uploads its alarm clips here." : r.message;
      if (r.ok) {  // the setup made (or renewed) the camera's upload login
        const cam = await api("GET", t.dataset.setup.replace(/\/setup$/, ""));
        const user = $("#upload-user");
        if (cam.ok && user) user.textContent = cam.data.upload_username;
      }
    } else if (t.matches("[data-action]")) {
      const form = t.closest("[data-controls]");
      let value = t.dataset.value;
      if (value === "true" || value === "false") value = value === "true";
      const input = t.dataset.input && $("#" + t.dataset.input);
      if (input) value = Number(input.value);
      const body = { action: t.dataset.action, value };
      const area = t.dataset.area && $("#" + t.dataset.area);
      if (area) body.area = Number(area.value);
      t.disabled = true;
      const r = await api("POST", form.dataset.controls, body);
      t.disabled = false;
      flash(r.ok ? "Sent to the camera." : r.message, r.ok ? "ok" : "bad");
      const md = $("#md-state");
      if (r.ok && md && body.action === "motion_detection") md.textContent = "(" + (value ? "on" : "off") + ")";
    } else if (t.matches("[data-live]")) {
      liveView(t);
    } else if (t.matches("[data-snapshot]")) {
      const box = $(".snapshot");
      box.classList.remove("no-image");
      const img = $("img", box);
      img.setAttribute("data-fallback", "");
      img.hidden = false;
      img.src = t.dataset.snapshot + "?t=" + Date.now();
    } else if (t.matches("[data-revoke]")) {
      if (!confirm("Revoke this link? The service loses access at once.")) return;
      const r = await api("DELETE", t.dataset.revoke);
      if (!r.ok) return flash(r.message, "bad");
      t.closest("li").remove();
      flash("Link revoked.");
    } else if (t.matches("[data-withdraw-consent]")) {
      if (!confirm("Withdraw this consent? A released clip is taken out of the training set.")) return;
      const r = await api("DELETE", "/api/v1/me/consents/" + encodeURIComponent(t.dataset.withdrawConsent));
      if (!r.ok) return flash(r.message, "bad");
      flash("Consent withdrawn.");
      await loadPrivacy();
    } else if (t.matches("[data-export]")) {
      await runExport(t);
    } else if (t.matches("[data-webhook-test]")) {
      t.disabled = true;
      const r = await api("POST", "/api/v1/webhooks/" + encodeURIComponent(t.dataset.webhookTest) + "/test", {});
      t.disabled = false;
      if (!r.ok) return flash(r.message, "bad");
      const d = r.data || {};
      flash(d.state === "sent" ? "Test delivered." : "Test failed: " + (d.last_error || d.state) + " (it will be retried).",
            d.state === "sent" ? "ok" : "bad");
      await showDeliveries(t.dataset.webhookTest, true);
    } else if (t.matches("[data-webhook-redeliver]")) {
      t.disabled = true;
      const r = await api("POST", t.dataset.webhookRedeliver, {});
      if (!r.ok) { t.disabled = false; return flash(r.message, "bad"); }
      flash("Queued again: it is sent within a few seconds.");
      await showDeliveries(t.dataset.webhookId, true);
    } else if (t.matches("[data-webhook-deliveries]")) {
      await showDeliveries(t.dataset.webhookDeliveries, false);
    } else if (t.matches("[data-webhook-remove]")) {
      if (!confirm("Remove this webhook? Deliveries not yet sent are dropped.")) return;
      const r = await api("DELETE", "/api/v1/webhooks/" + encodeURIComponent(t.dataset.webhookRemove));
      if (!r.ok) return flash(r.message, "bad");
      flash("Webhook removed.");
      await loadWebhooks();
    }
  });

  document.addEventListener("change", async (e) => {
    const el = e.target;
    if (el.matches("[data-detector]")) {
      const body = {}; body[el.dataset.detector] = el.checked;
      el.disabled = true;
      const r = await api("PUT", el.closest("[data-detectors]").dataset.detectors, body);
      el.disabled = false;
      if (!r.ok) { el.checked = !el.checked; return flash(r.message, "bad"); }
      el.closest("label").querySelector(".state").textContent = el.checked ? "on" : "off";
      // a detector that needs wider clips than this camera sends: its advice shows while it is on
      const advice = el.closest(".detector").querySelector("[data-advice-for]");
      if (advice) advice.hidden = !el.checked;
      flash((el.dataset.title || el.dataset.detector) + " detection switched " + (el.checked ? "on" : "off") + ".");
    } else if (el.matches("[data-brand]")) {
      fillModels(el);
    } else if (el.matches("[data-restrict]")) {
      const r = await api("PATCH", "/api/v1/me", { restricted: el.checked });
      if (!r.ok) { el.checked = !el.checked; return flash(r.message, "bad"); }
      flash(el.checked ? "Processing restricted: no detectors run on your clips." : "Processing allowed again.");
    } else if (el.matches("[data-fair-use]")) {
      const r = await api("PUT", el.dataset.fairUse, { override: el.value || null });
      flash(r.ok ? "Override saved." : r.message, r.ok ? "ok" : "bad");
    }
  });

  // ------------------------------------------------------------ cameras
  function fillModels(brandSel) {
    const cat = JSON.parse(brandSel.dataset.brand);
    const sel = $("#" + brandSel.dataset.models);
    sel.innerHTML = "";
    (cat[brandSel.value] || []).forEach((m) => sel.add(new Option(m, m)));
  }

  function showCredentials(c) {
    const panel = $("#credentials");
    const set = (id, v) => { const el = $("#" + id); if (el) el.value = v == null ? "" : String(v); };
    set("cred-username", c.username);
    set("cred-password", c.password);
    set("cred-http", c.http_url);
    set("cred-ftp-host", c.ftp_host);
    set("cred-ftp-port", c.ftp_port);
    // FTP switched off on this server (port 0): only the HTTP upload is offered
    const ftp = Boolean(c.ftp_port);
    $$("[data-ftp]", panel).forEach((el) => { el.hidden = !ftp; });
    const off = $("[data-ftp-off]", panel);
    if (off) off.hidden = ftp;
    // a loopback address in the upload settings (HTTP URL or FTP server) reaches no camera: say so instead of
    // letting it fail silently
    let host = "";
    try { host = new URL(c.http_url).hostname.replace(/^\[|\]$/g, ""); } catch (e) { host = ""; }
    const isLocal = (h) => h === "localhost" || h.endsWith(".localhost") || /^127\./.test(h) || h === "::1";
    const local = [host, ftp ? String(c.ftp_host || "") : ""].filter((h, i, all) => isLocal(h) && all.indexOf(h) === i);
    const warn = $("[data-cred-local]", panel);
    if (warn) {
      warn.hidden = !local.length;
      $("[data-cred-host]", warn).textContent = local.join(" and ");
    }
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
    $("#cred-password").focus();
  }

  async function addCamera(form) {
    showError(form, "");
    const body = formObject(form);
    busy(form, true);
    const r = await api("POST", "/api/v1/cameras", body);
    if (!r.ok) { busy(form, false); return showError(form, r.message); }
    const c = await api("POST", "/api/v1/cameras/" + r.data.id + "/upload-credentials", {});
    busy(form, false);
    if (!c.ok) return showError(form, c.message);
    const link = $("#new-camera-link");
    link.href = "/cameras/" + r.data.id;
    link.textContent = "Open " + r.data.name;
    showCredentials(c.data);
    form.reset();
    fillModels($("[data-brand]", form));
  }

  // ------------------------------------------------------------ linked services
  async function loadLinks() {
    const box = $("#links");
    if (!box) return;
    const r = await api("GET", "/api/v1/me/links");
    if (!r.ok) { box.innerHTML = ""; box.append(Object.assign(document.createElement("p"), { className: "error", textContent: r.message })); return; }
    const items = (r.data && (r.data.items || r.data.links)) || [];
    box.innerHTML = "";
    if (!items.length) { box.append(Object.assign(document.createElement("p"), { className: "muted", textContent: "No services are linked to your account." })); return; }
    const ul = document.createElement("ul");
    ul.className = "list";
    items.forEach((l) => {
      const li = document.createElement("li");
      const name = document.createElement("div");
      const title = document.createElement("strong");
      title.textContent = l.name || l.client_name || l.client_id;
      name.append(title);
      const scopes = document.createElement("div");
      scopes.className = "muted";
      const known = JSON.parse(box.dataset.scopes || "{}");
      const list = Array.isArray(l.scopes) ? l.scopes : (l.scope || "").split(" ").filter(Boolean);
      const ul2 = el("ul", { className: "scopes" }, ...list.map((x) => el("li", {}, el("code", { textContent: x }), known[x] ? ": " + known[x] : "")));
      const since = l.linked_at || l.created_at;
      scopes.textContent = (since ? "Linked " + new Date(since).toLocaleDateString() + ". " : "") + "It may:";
      scopes.append(ul2);
      name.append(scopes);
      const btn = document.createElement("button");
      btn.type = "button"; btn.className = "danger";
      btn.textContent = "Revoke";
      btn.dataset.revoke = "/api/v1/me/links/" + encodeURIComponent(l.client_id);
      btn.setAttribute("aria-label", "Revoke " + title.textContent);
      li.append(name, btn);
      ul.append(li);
    });
    box.append(ul);
  }

  // ------------------------------------------------------------ notifications (webhooks)
  const el = (tag, props, ...kids) => { const n = Object.assign(document.createElement(tag), props || {}); n.append(...kids); return n; };

  async function addWebhook(form) {
    showError(form, "");
    const events = $$("input[name=events]", form).filter((c) => c.checked).map((c) => c.value);
    if (!events.length) return showError(form, "Choose at least one event.");
    const body = { url: form.elements.url.value.trim(), events, only_real_alarms: form.elements.only_real_alarms.checked };
    busy(form, true);
    const r = await api("POST", "/api/v1/webhooks", body);
    busy(form, false);
    if (!r.ok) return showError(form, r.message);
    const panel = $("#webhook-secret");
    $("#webhook-secret-value").value = r.data.secret;
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
    flash("Webhook added.");
    form.elements.url.value = "";
    await loadWebhooks();
  }

  async function loadWebhooks() {
    const box = $("#webhooks");
    if (!box) return;
    const r = await api("GET", "/api/v1/webhooks");
    box.innerHTML = "";
    if (!r.ok) { box.append(el("p", { className: "error", textContent: r.message })); return; }
    const items = (r.data && r.data.items) || [];
    if (!items.length) { box.append(el("p", { className: "muted", textContent: "No webhooks yet." })); return; }
    const ul = el("ul", { className: "list hooks" });
    items.forEach((h) => {
      const info = el("div", { className: "hook-info" },
        el("strong", { className: "url", textContent: h.url }),
        el("div", { className: "muted", textContent: h.events.join(", ") + (h.only_real_alarms ? " · only real alarms" : " · all verdicts") }));
      const btn = (label, key, cls) => { const b = el("button", { type: "button", textContent: label, className: cls || "" }); b.dataset[key] = h.id; b.setAttribute("aria-label", label + " " + h.url); return b; };
      const actions = el("div", { className: "row" }, btn("Test", "webhookTest"), btn("Deliveries", "webhookDeliveries"),
                         btn("Remove", "webhookRemove", "danger"));
      const li = el("li", {}, info, actions);
      li.dataset.hook = h.id;
      ul.append(li, el("li", { className: "deliveries", hidden: true, id: "deliveries-" + h.id }));
    });
    box.append(ul);
  }

  async function showDeliveries(id, keepOpen) {
    const row = document.getElementById("deliveries-" + id);
    if (!row) return;
    if (!row.hidden && !keepOpen) { row.hidden = true; return; }
    const r = await api("GET", "/api/v1/webhooks/" + encodeURIComponent(id) + "/deliveries?limit=20");
    row.innerHTML = "";
    row.hidden = false;
    if (!r.ok) { row.append(el("p", { className: "error", textContent: r.message })); return; }
    const items = (r.data && r.data.items) || [];
    if (!items.length) { row.append(el("p", { className: "muted", textContent: "No deliveries yet." })); return; }
    const time = (v) => v ? el("time", { dateTime: v, textContent: v }) : "";
    const table = el("table", {}, el("thead", {}, el("tr", {}, ...["Queued", "Event", "State", "Attempts", "Last error", "Next attempt"].map((h) => el("th", { scope: "col", textContent: h })))));
    const tbody = el("tbody");
    const again = (d) => {
      if (d.state === "queued") return time(d.next_attempt_at);
      const b = el("button", { type: "button", textContent: "Send again" });
      b.dataset.webhookRedeliver = "/api/v1/webhooks/" + encodeURIComponent(id) + "/deliveries/" + d.id + "/redeliver";
      b.dataset.webhookId = id;
      b.setAttribute("aria-label", "Send delivery " + d.id + " again");
      return b;
    };
    items.forEach((d) => tbody.append(el("tr", {},
      el("td", {}, time(d.created_at)), el("td", { textContent: d.event_type || "" }),
      el("td", {}, el("span", { className: "badge " + ({ sent: "ok", dead: "alarm", queued: "pending" }[d.state] || "quiet"), textContent: d.state })),
      el("td", { textContent: String(d.attempts) }), el("td", { textContent: d.last_error || "" }), el("td", {}, again(d)))));
    table.append(tbody);
    const wrap = el("div", { className: "table-wrap" }, table);
    wrap.dataset.label = "Deliveries";
    row.append(wrap);
    tableScroll(row);
    localTimes(row);
  }

  // ------------------------------------------------------------ privacy
  async function runExport(btn) {
    const status = $("#export-status");
    const bar = $("#export-progress");
    status.className = "";
    btn.disabled = true;
    status.textContent = "Preparing your export…";
    bar.hidden = false; bar.removeAttribute("value");
    let r = await api("POST", "/api/v1/me/exports", {});
    if (r.ok && r.data && r.data.id) {
      for (let i = 0; i < 600; i++) {
        const s = await api("GET", "/api/v1/me/exports/" + encodeURIComponent(r.data.id));
        if (!s.ok) { r = s; break; }
        const d = s.data || {};
        if (typeof d.progress === "number") {
          bar.max = 1; bar.value = d.progress > 1 ? d.progress / 100 : d.progress;
          status.textContent = "Preparing your export… " + Math.round(bar.value * 100) + "%";
        }
        if (d.state === "failed" || d.status === "failed") { r = { ok: false, message: d.error || "The export failed." }; break; }
        if (d.download_url || d.state === "done" || d.status === "done" || d.state === "ready" || d.status === "ready") {
          return exportReady(btn, d.download_url || ("/api/v1/me/exports/" + encodeURIComponent(r.data.id) + "/download"));
        }
        await new Promise((ok) => setTimeout(ok, 1000));
      }
    } else if (r.status === 404 || r.status === 405) {
      // no background exports: the direct download
      const h = await fetch("/api/v1/me/export", { method: "HEAD", credentials: "same-origin" });
      if (h.ok) return exportReady(btn, "/api/v1/me/export");
      r = { ok: false, message: h.status === 404 ? "Data export is not available on this server yet." : "The export failed (" + h.status + ")." };
    }
    btn.disabled = false;
    bar.hidden = true;
    status.className = "error";
    status.textContent = r.message || "The export failed.";
  }

  function exportReady(btn, url) {
    const bar = $("#export-progress");
    bar.max = 1; bar.value = 1;
    const status = $("#export-status");
    status.textContent = "Your export is ready. ";
    const a = document.createElement("a");
    a.href = url; a.id = "export-download"; a.textContent = "Download the ZIP"; a.setAttribute("download", "");
    status.append(a);
    btn.disabled = false;
  }

  async function loadPrivacy() {
    const sw = $("[data-restrict]");
    if (!sw) return;
    const me = await api("GET", "/api/v1/me");
    if (me.ok) sw.checked = !!me.data.restricted;
    const box = $("#consents");
    const r = await api("GET", "/api/v1/me/consents");
    box.innerHTML = "";
    if (!r.ok) { box.append(Object.assign(document.createElement("p"), { className: "error", textContent: r.message })); return; }
    const items = (r.data && (r.data.items || r.data.consents)) || [];
    if (!items.length) { box.append(Object.assign(document.createElement("p"), { className: "muted", textContent: "You have not given or withdrawn any consent yet." })); return; }
    const kinds = { clip_release: "Clip released to improve a detector", integration_grant: "Linked service" };
    const ul = el("ul", { className: "list" });
    items.forEach((c) => {
      const at = c.given_at || c.at || c.created_at;
      const when = (v) => new Date(v).toLocaleString();
      const info = el("div", {}, el("strong", { textContent: kinds[c.kind] || c.kind || "Consent" }),
        el("div", { className: "muted", textContent: (c.purpose || "") + (at ? " · given " + when(at) : "") +
                                                        (c.withdrawn_at ? " · withdrawn " + when(c.withdrawn_at) : "") }));
      const li = el("li", {}, info);
      if (!c.withdrawn_at && c.kind === "clip_release") {
        const b = el("button", { type: "button", textContent: "Withdraw" });
        b.dataset.withdrawConsent = c.id;
        b.setAttribute("aria-label", "Withdraw: " + (c.purpose || "consent"));
        li.append(b);
      } else if (!c.withdrawn_at && c.kind === "integration_grant") {
        li.append(el("a", { href: "/links", textContent: "Manage" }));
      }
      ul.append(li);
    });
    box.append(ul);
  }

  // ------------------------------------------------------------ timeline: infinite scroll, live verdicts
  // "Load more" stays a button (keyboard, no-JS fallback of the URL); it also loads by itself when scrolled to
  const moreObserver = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    entries.forEach((e) => { if (e.isIntersecting && !e.target.disabled) e.target.click(); });
  }, { rootMargin: "400px" }) : null;
  function watchMore(root) { if (moreObserver) $$("[data-more]", root).forEach((b) => moreObserver.observe(b)); }

  // the server's words for every verdict it knows: the core's and those the deployment's detectors name
  const knownVerdicts = (() => {
    const el = document.getElementById("verdict-names");
    try { return el ? JSON.parse(el.textContent) : {}; } catch (e) { return {}; }
  })();
  function badgeFor(verdict, status) {
    if (!verdict) return status === "skipped" ? ["Skipped", "pending"] : ["Analysing…", "pending"];
    if (Object.prototype.hasOwnProperty.call(knownVerdicts, verdict)) return knownVerdicts[verdict];
    if (verdict.startsWith("false_alarm:")) return ["False alarm: " + verdict.split(":")[1].replace(/_/g, " "), "quiet"];
    return [verdict.replace(/_/g, " "), "quiet"];
  }

  // badges of clips still being analysed update themselves (timeline cards and the clip page)
  async function pollPending() {
    const pending = $$("[data-pending-id]");
    for (const b of pending) {
      const r = await api("GET", "/api/v1/events/" + encodeURIComponent(b.dataset.pendingId));
      if (!r.ok || !r.data || r.data.status === "pending") continue;
      const [text, cls] = badgeFor(r.data.verdict, r.data.status);
      b.textContent = text;
      b.className = b.className.replace(/\b(pending|alarm|rain|quiet|failed)\b/g, "").trim() + " " + cls;
      b.dataset.verdict = r.data.verdict || "";
      b.removeAttribute("data-pending-id");
      const meta = b.closest(".meta");
      if (meta) {
        // as the page draws them: each plate once, sorted, with the owner's name for a known plate beside it
        const names = new Map();
        (r.data.findings || []).filter((f) => f.text).forEach((f) => {
          if (!names.get(f.text)) names.set(f.text, f.known_plate ? f.known_plate.name : "");
        });
        [...names.keys()].sort().forEach((p) => {
          meta.append(el("span", { className: "plate", textContent: p }));
          if (names.get(p)) meta.append(" ", el("span", { className: "plate-name", textContent: names.get(p) }));
        });
      }
      const note = document.getElementById("analysis-done");
      if (note) note.hidden = false;
    }
    if ($$("[data-pending-id]").length) setTimeout(pollPending, 3000);
  }

  // ------------------------------------------------------------ timeline: bulk download of clips
  // The ZIP comes from a plain form post, so the browser saves it as it arrives (the page never holds it); a
  // count_only request first turns a refusal (too many clips, nothing matching) into a message on the page.
  function appliedFilters() {
    // the filters of the shown list (the address), not unsent edits of the form; a day means since/until, as on
    // the server: the day in this browser's time zone (tz: minutes, getTimezoneOffset)
    const q = new URLSearchParams(location.search);
    const out = {};
    ["camera_id", "site", "label", "verdict", "plate", "plates", "kept"].forEach((k) => { const v = (q.get(k) || "").trim(); if (v) out[k] = v; });
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec((q.get("day") || "").trim());
    if (m) {
      const raw = (q.get("tz") || "0").trim();
      const tz = /^-?\d+$/.test(raw) && Math.abs(Number(raw)) <= 900 ? Number(raw) : 0;
      const start = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + tz * 60000;
      out.since = new Date(start).toISOString();
      out.until = new Date(start + 86400000).toISOString();
    }
    return out;
  }

  // sizes in steps of 1024, as the server's pages write them ("10 GB", "4.5 MB")
  function sizeText(n) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    n = Number(n) || 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(1).replace(/\.0$/, "")) + " " + units[i];
  }
  window.alarmcloud.sizeText = sizeText;

  // cases: put clips into a chosen case, or into a new one named in the picker; then show the case
  async function addToCase(button, ids) {
    const box = button.closest("[data-case-picker]");
    const series = $("[data-case-series]", box);
    if (series && series.checked) ids = series.dataset.caseSeries.split(",");  // the clip's whole alarm series
    const target = $("[data-case-target]", box).value;
    const nameEl = $("[data-case-name]", box);
    const name = nameEl.value.trim();
    if (!target && !name) { nameEl.focus(); return flash("Name the new case first.", "bad"); }
    button.disabled = true;
    const r = target ? await api("POST", "/api/v1/cases/" + encodeURIComponent(target) + "/events", { event_ids: ids })
      : await api("POST", "/api/v1/cases", { name, event_ids: ids });
    button.disabled = false;
    if (!r.ok) return flash(r.message, "bad");
    sessionStorage.setItem("ac-flash", (ids.length === 1 ? "Clip added" : ids.length + " clips added") + " to the case.");
    location.assign("/cases/" + encodeURIComponent(r.data.id));
  }
  document.addEventListener("change", (e) => {
    const sel = e.target;
    if (!sel.matches || !sel.matches("[data-case-target]")) return;
    const field = $("[data-case-new]", sel.closest("[data-case-picker]"));
    field.hidden = sel.value !== "";
    if (!field.hidden) $("input", field).focus();
  });

  function setupBulk() {
    const bar = $("[data-bulk]");
    if (!bar) return;
    bar.hidden = false;
    const all = $("[data-select-page]", bar);
    const selBtn = $("[data-download-selected]", bar);
    const allBtn = $("[data-download-all]", bar);
    const status = $("[data-bulk-status]", bar);
    const picks = () => $$("[data-pick]");
    const chosen = () => picks().filter((b) => b.checked).map((b) => b.value);
    function update() {
      const n = chosen().length;
      const total = picks().length;
      selBtn.textContent = "Download selected (" + n + ")";
      selBtn.disabled = n === 0;
      const toCase = $("[data-add-to-case]", bar);
      if (toCase) toCase.disabled = n === 0;
      all.checked = n > 0 && n === total;
      all.indeterminate = n > 0 && n < total;
    }
    document.addEventListener("change", (e) => { if (e.target.matches && e.target.matches("[data-pick]")) update(); });
    all.addEventListener("change", () => { picks().forEach((b) => { b.checked = all.checked; }); update(); });
    const list = $("#events");
    if (list && "MutationObserver" in window) new MutationObserver(update).observe(list, { childList: true, subtree: true });

    function say(text, bad) { status.className = (bad ? "error" : "muted") + " bulk-status"; status.textContent = text; }
    async function download(body) {
      say("Preparing the download…");
      selBtn.disabled = true; allBtn.disabled = true;
      const r = await api("POST", "/api/v1/events/download", Object.assign({ link: true }, body));
      allBtn.disabled = false; update();
      if (!r.ok) { say(r.message, true); return; }
      // a link the browser saves like a file: it shows the size and the progress, and resumes a broken download
      const a = Object.assign(document.createElement("a"), { href: r.data.url, hidden: true });
      a.setAttribute("download", "");
      document.body.append(a);
      a.click();
      a.remove();
      const n = r.data.count;
      say("Downloading " + n + " clip" + (n === 1 ? "" : "s") + " as a ZIP file (" + sizeText(r.data.size) +
          "). If it breaks off, resume it in the browser's downloads within 24 hours.");
    }
    selBtn.addEventListener("click", () => { const ids = chosen(); if (ids.length) download({ ids }); });
    allBtn.addEventListener("click", () => download(Object.assign({ all: true }, appliedFilters())));
    update();
  }

  // live view: a new snapshot every LIVE_EVERY ms while the page is visible, for at most LIVE_FOR ms (each picture
  // is a request to the camera through the server); the next picture is loaded before it replaces the shown one
  const LIVE_EVERY = 2000, LIVE_FOR = 5 * 60 * 1000;
  let live = null;
  function liveView(button) {
    const state = $("#live-state");
    const stop = (why) => {
      if (!live) return;
      clearTimeout(live.timer);
      live = null;
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Start live view";
      state.textContent = why;
      state.hidden = !why;
    };
    if (live) return stop("Live view stopped.");
    const box = $(".snapshot");
    const img = $("img", box);
    live = { started: Date.now(), timer: 0, pictures: 0 };
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Stop live view";
    state.hidden = false;
    state.textContent = "Connecting to the camera…";
    const run = live;
    const next = () => {
      if (live !== run) return;
      if (Date.now() - run.started > LIVE_FOR) return stop("Live view stopped after 5 minutes. Start it again to go on.");
      if (document.hidden) { run.timer = setTimeout(next, LIVE_EVERY); return; }
      const pic = new Image();
      pic.onload = () => {
        if (live !== run) return;
        box.classList.remove("no-image");
        img.removeAttribute("data-fallback");
        img.src = pic.src;
        img.hidden = false;
        run.pictures += 1;
        state.textContent = "Live: picture of " + new Date().toLocaleTimeString() + ", a new one every " + LIVE_EVERY / 1000 + " s.";
        run.timer = setTimeout(next, LIVE_EVERY);
      };
      pic.onerror = () => {
        if (live !== run) return;
        stop("");
        box.classList.add("no-image");
        flash("Live view stopped: the camera cannot be reached from the server.", "bad");
      };
      pic.src = button.dataset.live + "?t=" + Date.now();
    };
    next();
  }

  // draw each finding's box (fractions of the frame) over the clip while the player is near the finding's time;
  // the video is letterboxed inside its element (object-fit: contain), so the box follows the picture's rectangle
  function findingBoxes() {
    const v = $("#player");
    const boxes = $$(".finding-box");
    if (!v || !boxes.length) return;
    const NEAR = 1.0;  // seconds before and after the finding's best frame
    function place() {
      const vw = v.videoWidth, vh = v.videoHeight;
      const ew = v.clientWidth, eh = v.clientHeight;
      const shown = vw && vh && ew && eh;
      const s = shown ? Math.min(ew / vw, eh / vh) : 0;
      const ox = v.offsetLeft + (ew - vw * s) / 2, oy = v.offsetTop + (eh - vh * s) / 2;
      boxes.forEach((b) => {
        const [x0, y0, x1, y1] = b.dataset.box.split(",").map(Number);
        const on = shown && Math.abs(v.currentTime - Number(b.dataset.time)) <= NEAR;
        b.hidden = !on;
        b.style.display = on ? "" : "none";
        if (!on) return;
        Object.assign(b.style, { left: ox + x0 * vw * s + "px", top: oy + y0 * vh * s + "px",
                                 width: (x1 - x0) * vw * s + "px", height: (y1 - y0) * vh * s + "px" });
      });
    }
    ["loadedmetadata", "timeupdate", "seeked", "play", "pause"].forEach((e) => v.addEventListener(e, place));
    window.addEventListener("resize", place);
    place();
  }

  // wide tables scroll sideways inside their .table-wrap on a phone: while one does, a line above it says so, a
  // shadow (CSS) marks each edge with more columns behind it, and the wrapper takes keyboard focus for arrow keys
  function tableScroll(root) {
    $$(".table-wrap", root).forEach((wrap) => {
      if (wrap.dataset.scrollHint) return;
      wrap.dataset.scrollHint = "1";
      const hint = document.createElement("p");
      hint.className = "scroll-hint";
      hint.setAttribute("aria-hidden", "true");  // screen readers read the whole table; the hint is for the eyes
      hint.hidden = true;
      wrap.before(hint);
      const head = wrap.closest("section, .card");
      const title = wrap.dataset.label || (head && $("h2, h3", head) ? $("h2, h3", head).textContent.trim() : "Table");
      const update = () => {
        const over = wrap.scrollWidth > wrap.clientWidth + 1;
        const end = wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 1;
        hint.hidden = !over;
        hint.textContent = over && end ? "← Scroll back for the first columns" : "Scroll sideways for more columns →";
        wrap.classList.toggle("more-left", over && wrap.scrollLeft > 1);
        wrap.classList.toggle("more-right", over && !end);
        if (over) {
          wrap.tabIndex = 0;
          wrap.setAttribute("role", "region");
          wrap.setAttribute("aria-label", title + " (scrolls sideways)");
        } else {
          ["tabindex", "role", "aria-label"].forEach((a) => wrap.removeAttribute(a));
        }
      };
      wrap.addEventListener("scroll", update, { passive: true });
      if (window.ResizeObserver) new ResizeObserver(update).observe(wrap);
      window.addEventListener("resize", update);
      update();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    tableScroll(document);
    watchMore(document);
    findingBoxes();
    setupBulk();
    if ($$("[data-pending-id]").length) setTimeout(pollPending, 2000);
    const pending = sessionStorage.getItem("ac-flash");
    if (pending) { sessionStorage.removeItem("ac-flash"); flash(pending); }
    localTimes(document);
    $$("[data-brand]").forEach(fillModels);
    loadLinks();
    loadPrivacy();
    loadWebhooks();
  });
})();

// ------------------------------------------------------------ two-step verification (login second step, account)
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const api = (...a) => window.alarmcloud.api(...a);

  function say(root, text) {
    const el = $(".error", root);
    if (el) { el.textContent = text; el.hidden = !text; }
  }
  // hide with an inline style too: classes such as .stack set a display that would override the attribute
  function show(el, on) { el.hidden = !on; el.style.display = on ? "" : "none"; }
  function busy(root, on) { root.querySelectorAll("button").forEach((b) => { b.disabled = on; }); }
  let pendingToken = "";

  async function loginPassword(form) {
    const step2 = $("[data-login-step2]");
    const body = { email: form.elements.email.value, password: form.elements.password.value };
    busy(form, true);
    const r = await api("POST", "/api/v1/auth/login", body);
    busy(form, false);
    if (r.ok) { location.assign(form.dataset.redirect || "/"); return; }
    const code = r.data && r.data.error && r.data.error.code;
    if (code === "second_factor_required" && step2) {
      pendingToken = r.data.pending_token;
      const codeForm = $("form", step2);
      show(form, false);
      show(step2, true);
      say(codeForm, "");
      codeForm.elements.code.value = "";
      codeForm.elements.code.focus();
      return;
    }
    say(form, r.status === 401 ? "Wrong e-mail address or password." : r.message);
  }

  async function loginCode(form) {
    busy(form, true);
    const r = await api("POST", "/api/v1/auth/login/second-factor",
                        { pending_token: pendingToken, code: form.elements.code.value });
    busy(form, false);
    if (r.ok) { location.assign(form.dataset.redirect || "/"); return; }
    const code = r.data && r.data.error && r.data.error.code;
    if (code === "login_expired") { restart("This login took too long. Enter your password again."); return; }
    form.elements.code.select();
    say(form, code === "invalid_code"
      ? "That code is wrong or was already used. Wait for the next code in your app, or enter a recovery code."
      : r.message);
  }

  function restart(message) {
    const form = $("form[data-login]");
    const step2 = $("[data-login-step2]");
    if (!form || !step2) return;
    pendingToken = "";
    show(step2, false);
    show(form, true);
    form.elements.password.value = "";
    say(form, message || "");
    form.elements.password.focus();
  }

  async function start(btn) {
    const intro = btn.closest("[data-twofactor-intro]");
    const enrol = $("[data-twofactor-enrol]");
    busy(intro, true);
    const r = await api("POST", "/api/v1/me/2fa");
    busy(intro, false);
    if (!r.ok) { say(intro, r.message); return; }
    $("[data-twofactor-qr]").innerHTML = r.data.qr_svg;  // generated by the server from the key, not user input
    $("[data-twofactor-secret]").textContent = r.data.secret.replace(/(.{4})/g, "$1 ").trim();
    const mailed = $("[data-twofactor-email]");  // the server requires it: a code went to the e-mail address
    mailed.hidden = !r.data.email_code_sent;
    $("input", mailed).disabled = !r.data.email_code_sent;
    $("input", mailed).required = Boolean(r.data.email_code_sent);
    show(intro, false);
    show(enrol, true);
    $("input[name=code]", enrol).focus();
  }

  let recoveryCodes = [];
  async function confirmCode(form) {
    busy(form, true);
    const body = { code: form.elements.code.value.replace(/\s/g, ""), password: form.elements.password.value };
    if (!form.elements.email_code.disabled) body.email_code = form.elements.email_code.value;
    const r = await api("POST", "/api/v1/me/2fa/confirm", body);
    busy(form, false);
    if (!r.ok) {
      if (r.status === 401) { form.elements.password.select(); say(form, "The password is wrong."); return; }
      if (r.data && r.data.error && r.data.error.code === "invalid_email_code") {
        form.elements.email_code.select();
        say(form, "The code from the e-mail is wrong: use the one in the latest e-mail.");
        return;
      }
      form.elements.code.select();
      say(form, r.status === 400 ? "That code is wrong. Check that your phone's clock is right and try the next code."
                                 : r.message);
      return;
    }
    recoveryCodes = r.data.recovery_codes;
    const list = $("[data-twofactor-list]");
    list.replaceChildren(...recoveryCodes.map((c) => {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = c;
      li.append(code);
      return li;
    }));
    show($("[data-twofactor-enrol]"), false);
    const box = $("[data-twofactor-codes]");
    show(box, true);
    $("h3", box).focus();
  }

  async function switchOff(form) {
    busy(form, true);
    const r = await api("POST", "/api/v1/me/2fa/disable",
                        { password: form.elements.password.value, code: form.elements.code.value });
    busy(form, false);
    if (r.ok) {
      sessionStorage.setItem("ac-flash", "Two-step verification is off.");
      location.reload();
      return;
    }
    say(form, r.status === 401 ? "The password is wrong."
      : r.status === 400 ? "That code is wrong or was already used." : r.message);
  }

  function codesText() {
    return "alarmcloud recovery codes (each works once)\n" + location.host + "\n\n" + recoveryCodes.join("\n") + "\n";
  }

  document.addEventListener("submit", (e) => {
    const form = e.target;
    const handlers = [["[data-login]", loginPassword], ["[data-login-code]", loginCode],
                      ["[data-twofactor-confirm]", confirmCode], ["[data-twofactor-off]", switchOff]];
    for (const [sel, fn] of handlers) {
      if (form.matches(sel)) { e.preventDefault(); say(form, ""); fn(form); return; }
    }
  });

  document.addEventListener("click", async (e) => {
    const el = e.target.closest("button");
    if (!el) return;
    if (el.matches("[data-login-restart]")) restart("");
    else if (el.matches("[data-twofactor-start]")) await start(el);
    else if (el.matches("[data-twofactor-copy]")) {
      try { await navigator.clipboard.writeText(codesText()); el.textContent = "Copied"; }
      catch (err) { el.textContent = "Copy failed: select the codes by hand"; }
    } else if (el.matches("[data-twofactor-download]")) {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([codesText()], { type: "text/plain" }));
      a.download = "alarmcloud-recovery-codes.txt";
      document.body.append(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    }
  });
})();

// ------------------------------------------------------------ privacy masks (camera page)
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const api = (...a) => window.alarmcloud.api(...a);
  const MAX = 8;
  const MIN = 0.01;  // each mask at least 1 % of the picture's width and height (the server checks it too)
  const pct = (v) => Math.round(v * 1000) / 10;
  const r4 = (v) => Math.round(v * 10000) / 10000;
  const place = (el, m) => Object.assign(el.style, { left: m[0] * 100 + "%", top: m[1] * 100 + "%",
                                                     width: (m[2] - m[0]) * 100 + "%", height: (m[3] - m[1]) * 100 + "%" });

  const plural = (n, one, many) => n + " " + (n === 1 ? one : many);
  const capital = (t) => t.charAt(0).toUpperCase() + t.slice(1);
  const ACTIVE = ["queued", "running"];

  // applying the saved masks to the clips stored without them: a job on the server, polled every second
  function applier(card, img) {
    const box = $("[data-mask-apply]", card);
    if (!box) return { refresh() {} };
    const url = box.dataset.maskApply;
    const offer = $("[data-apply-offer]", box);
    const pending = $("[data-apply-pending]", box);
    const start = $("[data-apply-start]", box);
    const bar = $("[data-apply-bar]", box);
    const state = $("[data-apply-state]", box);
    const err = $("[data-apply-error]", box);
    const fails = $("[data-apply-failures]", box);
    let timer = null;
    let seq = 0;
    let watched = null;  // the job this page started or saw running: its end is reported
    state.tabIndex = -1;  // focus goes here when the button it replaces disappears

    const error = (text) => { err.textContent = text; err.hidden = !text; };
    const fit = () => { box.hidden = offer.hidden && bar.hidden && !state.textContent && err.hidden; };

    // the card's picture is revalidated by its ETag on each request, but the page keeps the image it has:
    // a new query string makes the browser ask again and show the masked one
    function reloadPicture(v) {
      if (!img || !img.hasAttribute("data-mask-thumbnail")) return;
      const u = new URL(img.getAttribute("src"), location.href);
      u.searchParams.set("v", v);
      img.src = u.pathname + u.search;
    }

    function ended(d) {
      bar.hidden = true;
      fails.replaceChildren();
      if (d.state === "done") {
        if (!d.total) { state.textContent = "Nothing to do: every stored clip has the current masks."; }
        else {
          state.textContent = plural(d.done, "clip", "clips") + " masked" + (d.failed ? ", " + d.failed + " failed" : "") + ".";
          if (d.done) reloadPicture(d.job_id);
        }
        for (const f of d.failures || []) {
          const a = document.createElement("a");
          a.href = "/events/" + encodeURIComponent(f.clip_id);
          a.textContent = "Clip " + f.clip_id;
          const li = document.createElement("li");
          li.append(a, ": " + (f.message || f.code || "could not be masked"));
          fails.append(li);
        }
      } else {  // cancelled or dead
        state.textContent = "Stopped: " + (d.done || 0) + " of " + plural(d.total || 0, "clip", "clips") + " masked.";
        error(capital(d.error || "the job stopped."));
      }
      fails.hidden = !fails.children.length;
    }

    function show(d) {
      const active = ACTIVE.includes(d.state);
      const n = d.pending_clips || 0;
      pending.textContent = plural(n, "clip", "clips") + " stored without the current masks.";
      offer.hidden = active || n === 0;
      if (active) {
        watched = d.job_id;
        const handled = (d.done || 0) + (d.failed || 0);
        bar.hidden = false;
        bar.max = Math.max(1, d.total || 0);
        bar.value = handled;
        state.textContent = (d.state === "queued" ? "Waiting to start: " : "Masking stored clips: ") +
          handled + " of " + plural(d.total || 0, "clip", "clips") + ".";
        fails.hidden = true;
        error("");
      } else if (d.job_id && d.job_id === watched) {
        watched = null;
        ended(d);
      } else {
        bar.hidden = true;
      }
      fit();
    }

    async function refresh(fresh) {
      clearTimeout(timer);
      timer = null;
      const mine = ++seq;
      if (fresh) { state.textContent = ""; error(""); fails.hidden = true; }
      const r = await api("GET", url);
      if (mine !== seq) return;  // a newer refresh answers
      if (!r.ok) {
        if (watched) { error(r.message); fit(); timer = setTimeout(refresh, 3000); }
        return;
      }
      show(r.data || {});
      if (ACTIVE.includes((r.data || {}).state)) timer = setTimeout(refresh, 1000);
    }

    start.addEventListener("click", async () => {
      error("");
      start.disabled = true;
      const r = await api("POST", url);
      start.disabled = false;
      if (!r.ok) { error(r.message); fit(); return; }
      state.textContent = "";
      watched = r.data.job_id;
      show(r.data);
      state.focus();
      if (ACTIVE.includes(r.data.state)) { clearTimeout(timer); seq++; timer = setTimeout(refresh, 1000); }
    });
    return { refresh };
  }

  function setup(card) {
    const stage = $("[data-mask-stage]", card);
    const list = $("[data-mask-list]", card);
    const empty = $("[data-mask-empty]", card);
    const err = $("[data-mask-error]", card);
    const state = $("[data-mask-state]", card);
    const editable = card.hasAttribute("data-editable");
    let masks = [];
    try { masks = JSON.parse(stage.dataset.initial || "[]") || []; } catch (e) { masks = []; }
    let saved = JSON.stringify(masks);
    stage.style.aspectRatio = stage.dataset.aspect || "16 / 9";  // set here: the page's CSP allows no inline styles
    const img = $("img", stage);
    const noPicture = () => {
      stage.classList.add("no-picture");
      if (img) img.hidden = true;
      $(".mask-note", stage).textContent = "No picture: the masks are shown on the frame's outline.";
    };
    if (img) {
      img.addEventListener("error", noPicture);
      img.addEventListener("load", () => {  // e.g. the masked thumbnail after applying the masks
        if (!img.hidden) return;
        img.hidden = false;
        stage.classList.remove("no-picture");
        $(".mask-note", stage).textContent = "";
      });
      if (img.complete && img.naturalWidth === 0) noPicture();
    }

    function say(text) { if (err) { err.textContent = text; err.hidden = !text; } }
    function dirty() { if (state) state.textContent = JSON.stringify(masks) === saved ? "" : "Not saved yet."; }

    function render() {
      stage.querySelectorAll(".mask-rect:not(.drawing)").forEach((el) => el.remove());
      masks.forEach((m, i) => {
        const el = document.createElement("div");
        el.className = "mask-rect";
        el.setAttribute("aria-hidden", "true");  // the list below names every mask
        el.textContent = String(i + 1);
        place(el, m);
        stage.append(el);
      });
      list.replaceChildren(...masks.map((m, i) => {
        const li = document.createElement("li");
        const span = document.createElement("span");
        span.textContent = `Mask ${i + 1}: ${pct(m[0])}–${pct(m[2])} % across, ${pct(m[1])}–${pct(m[3])} % down`;
        li.append(span);
        if (editable) {
          const b = document.createElement("button");
          b.type = "button";
          b.textContent = "Remove";
          b.setAttribute("aria-label", `Remove mask ${i + 1}`);
          b.addEventListener("click", () => {
            masks.splice(i, 1);
            say("");
            render();
            const next = list.querySelectorAll("button")[Math.min(i, masks.length - 1)] || $("[data-mask-save]", card);
            if (next) next.focus();
          });
          li.append(b);
        }
        return li;
      }));
      list.hidden = !masks.length;
      empty.hidden = masks.length > 0;
      dirty();
    }

    function add(m) {
      if (masks.length >= MAX) { say(`At most ${MAX} masks per camera: remove one first.`); return false; }
      masks.push(m.map(r4));
      say("");
      render();
      return true;
    }

    render();
    if (!editable) return;

    // draw by dragging on the picture (mouse, pen or finger)
    let start = null;
    let drawing = null;
    const at = (e) => {
      const r = stage.getBoundingClientRect();
      return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)),
              Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))];
    };
    const box = (a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    stage.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      if (masks.length >= MAX) { say(`At most ${MAX} masks per camera: remove one first.`); return; }
      start = at(e);
      stage.setPointerCapture(e.pointerId);
      drawing = document.createElement("div");
      drawing.className = "mask-rect drawing";
      drawing.setAttribute("aria-hidden", "true");
      place(drawing, [...start, ...start]);
      stage.append(drawing);
    });
    stage.addEventListener("pointermove", (e) => { if (start) place(drawing, box(start, at(e))); });
    const finish = (e, cancel) => {
      if (!start) return;
      const m = box(start, at(e));
      start = null;
      drawing.remove();
      drawing = null;
      if (cancel) return;
      if (m[2] - m[0] < MIN || m[3] - m[1] < MIN) {
        say("Drag across the area to cover: a mask is at least 1 % of the picture's width and height.");
        return;
      }
      add(m);
    };
    stage.addEventListener("pointerup", (e) => finish(e, false));
    stage.addEventListener("pointercancel", (e) => finish(e, true));

    // the same by keyboard: four percentages
    const form = $("[data-mask-add]", card);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const v = ["x0", "y0", "x1", "y1"].map((n) => form.elements[n].value.trim() === "" ? NaN
                                                                                          : Number(form.elements[n].value));
      if (v.some((x) => !isFinite(x) || x < 0 || x > 100)) { say("Enter four numbers from 0 to 100 (percent)."); return; }
      if (!(v[0] < v[2] && v[1] < v[3])) { say("Left must be less than Right, and Top less than Bottom."); return; }
      if (v[2] - v[0] < MIN * 100 || v[3] - v[1] < MIN * 100) {
        say("A mask must be at least 1 % of the picture's width and height.");
        return;
      }
      add(v.map((x) => x / 100));
    });

    const apply = applier(card, img);
    if (saved !== "[]") apply.refresh(true);
    const save = $("[data-mask-save]", card);
    save.addEventListener("click", async () => {
      say("");
      save.disabled = true;
      const r = await api("PATCH", card.dataset.masks, { privacy_masks: masks });
      save.disabled = false;
      if (!r.ok) { say(r.message); return; }
      masks = r.data.privacy_masks || [];
      saved = JSON.stringify(masks);
      render();
      state.textContent = masks.length ? "Saved: new clips are stored with these masks." : "Saved: no masks.";
      apply.refresh(true);  // how many stored clips lack the new masks
    });

  }

  document.addEventListener("DOMContentLoaded", () => {
    const card = $("[data-masks]");
    if (card) setup(card);
  });
})();

// ------------------------------------------------------------ detector options (camera page)
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const api = (...a) => window.alarmcloud.api(...a);

  // the same one-line summary as pages.option_summary: the camera's value, or the deployment default
  function summary(box, value) {
    const codes = $$("input[type=checkbox]:not([data-group])", box).map((c) => c.value);  // "all" of the single ones
    const show = (v) => Array.isArray(v)
      ? (codes.length > 1 && codes.every((c) => v.includes(c)) ? "all " + codes.length : v.join(", "))
      : String(v);
    if (value === null || value === undefined) {
      let d = null;
      try { d = JSON.parse(box.dataset.default || "null"); } catch (e) { d = null; }
      return "deployment default" + (d === null ? "" : " (" + show(d) + ")");
    }
    return show(value);
  }

  // what the form says for one option: a value, null (deployment default), or {error}
  function read(box) {
    if (box.dataset.kind === "choices") {
      const ticked = $$("input[type=checkbox]", box).filter((c) => c.checked).map((c) => c.value);
      return ticked.length ? ticked : null;
    }
    const input = $("input", box);
    if (input.validity.badInput) return { error: box.dataset.label + ": enter a number, or leave it empty." };
    return input.value.trim() === "" ? null : Number(input.value);
  }

  function setup(form) {
    const name = form.dataset.detectorOptions;
    const url = form.closest("[data-detectors]").dataset.detectors;
    const err = $("[data-options-error]", form);
    const state = $("[data-options-state]", form);
    const boxes = $$("[data-option]", form);
    const say = (text) => { err.textContent = text; err.hidden = !text; };
    const snapshot = () => JSON.stringify(boxes.map(read));
    let saved = snapshot();
    const dirty = () => { state.textContent = snapshot() === saved ? "" : "Not saved yet."; };
    form.addEventListener("input", dirty);
    form.addEventListener("change", dirty);

    for (const box of boxes) {
      const filter = $("[data-option-filter]", box);
      if (filter) {
        const none = $("[data-filter-empty]", box);
        filter.addEventListener("input", () => {
          const q = filter.value.trim().toLowerCase();
          let shown = 0;
          for (const label of $$("[data-choice-list] label", box)) {
            const hit = !q || label.textContent.toLowerCase().includes(q);
            label.hidden = !hit;
            if (hit) shown++;
          }
          none.hidden = shown > 0;
        });
        // Enter in the filter box narrows the list; it does not save the form
        filter.addEventListener("keydown", (e) => { if (e.key === "Enter") e.preventDefault(); });
      }
      $("[data-option-reset]", box).addEventListener("click", () => {
        $$("input[type=checkbox]", box).forEach((c) => { c.checked = false; });
        const input = $("input[type=number]", box);
        if (input) input.value = "";
        say("");
        dirty();
      });
    }

    // a threshold option: how this camera's recent clips scored, so the owner sees what a value would flag
    const preview = $("[data-threshold-preview]", form);
    if (preview) {
      const box = preview.closest("[data-option]");
      const input = $("input[type=number]", box);
      let data = null;
      const pct = (v) => Math.round(v * 100) + "%";
      const clips = (n) => `${n} ${n === 1 ? "clip" : "clips"}`;
      const show = () => {
        if (!data || !data.scored) { preview.hidden = true; return; }
        const typed = input.value.trim() === "" ? null : Number(input.value);
        const t = typed === null || Number.isNaN(typed) ? data.current : typed;
        if (t === null || t === undefined) { preview.hidden = true; return; }
        let flagged = 0, now = 0, wrong = 0, missed = 0;
        for (const l of data.levels) {
          const hit = l.score >= t - 1e-9;
          if (hit) { flagged += l.clips; wrong += l.marked_wrong; }
          else missed += l.marked_right;
          if (data.current !== null && l.score >= data.current - 1e-9) now += l.clips;
        }
        const parts = [`At ${pct(t)}, ${flagged} of this camera's ${clips(data.scored)} of the last ${data.days} days ` +
          `would count as ${preview.dataset.found}` +
          (data.current !== null && Math.abs(t - data.current) > 1e-9 ? ` (${now} at the ${pct(data.current)} in use)` : "")];
        if (wrong) parts.push(`${wrong} of them you marked as wrong`);
        if (missed) parts.push(`${clips(missed)} you confirmed would not`);
        preview.textContent = parts.join("; ") + ".";
        preview.hidden = false;
      };
      input.addEventListener("input", show);
      $("[data-option-reset]", box).addEventListener("click", show);
      const load = () => api("GET", preview.dataset.thresholdPreview).then((r) => { if (r.ok) { data = r.data; show(); } });
      // read the scores when the owner opens the options (a busy camera's month takes a moment to count)
      const panel = form.closest("[id]");
      const toggle = panel && document.querySelector(`[aria-controls="${panel.id}"]`);
      if (toggle && panel.hidden) toggle.addEventListener("click", () => { if (!data) load(); });
      else load();
      form.addEventListener("options-saved", load);  // the threshold in use changed
    }

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      say("");
      const options = {};
      for (const box of boxes) {
        const v = read(box);
        if (v && v.error) { say(v.error); $("input", box).focus(); return; }
        options[box.dataset.option] = v;
      }
      const button = $("button[type=submit]", form);
      button.disabled = true;
      state.textContent = "Saving…";
      const body = { options: {} };
      body.options[name] = options;
      const r = await api("PUT", url, body);
      button.disabled = false;
      if (!r.ok) { state.textContent = "Not saved."; say(r.message); return; }
      const stored = (r.data.options || {})[name] || {};
      const parts = [];
      for (const box of boxes) {
        const value = stored[box.dataset.option];
        const text = summary(box, value);
        $("[data-option-now]", box).textContent = text;
        const input = $("input[type=number]", box);
        if (input) { input.value = value === undefined || value === null ? "" : String(value); input.placeholder = text; }
        parts.push(box.dataset.label + ": " + text);
      }
      $("[data-options-summary]", form.closest(".detector")).textContent = parts.join("; ");
      saved = snapshot();
      state.textContent = "Saved.";
      form.dispatchEvent(new CustomEvent("options-saved"));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $$("[data-options-toggle]").forEach((button) => {
      const panel = document.getElementById(button.getAttribute("aria-controls"));
      button.addEventListener("click", () => {
        const open = button.getAttribute("aria-expanded") !== "true";
        button.setAttribute("aria-expanded", String(open));
        panel.hidden = !open;
      });
    });
    $$("form[data-detector-options]").forEach(setup);
  });
})();

// ------------------------------------------------------------ notifications: what the push and Telegram cards share
window.alarmcloud.card = (function () {
  function say(form, text, kind) {
    const el = form.querySelector(".push-result");
    el.textContent = text;
    el.className = "push-result " + (kind || "");
    el.hidden = !text;
  }

  function busy(form, on) { form.querySelectorAll("button").forEach((b) => { b.disabled = on; }); }

  // the secret field: a new value replaces the saved one, "remove" deletes it, empty keeps it
  function readToken(form, body) {
    const token = form.elements.token.value.trim();
    if (token) body.token = token;
    else if (form.elements.remove_token && form.elements.remove_token.checked) body.token = null;
  }

  function tokenSaved(form, has, removeSelector, noneText) {
    form.elements.token.value = "";  // never shown again
    form.elements.token.placeholder = has ? "a token is saved; type a new one to replace it" : noneText;
    const remove = form.querySelector(removeSelector);
    if (remove) { remove.hidden = !has; form.elements.remove_token.checked = false; }
  }

  // a test delivery's outcome: [text, kind]
  function testOutcome(d, noun, delivered, check) {
    if (d.state === "sent") return [delivered, "ok"];
    const why = d.last_error || d.state;
    if (d.state === "queued") return [noun + " not delivered yet: " + why + ". It is tried again in a moment.", "error"];
    return [noun + " not delivered: " + why + ". " + check, "error"];
  }

  // "Send test ...": save what is on the page first, then ask for a test delivery and show its outcome
  async function runTest(form, sending, save, url, outcome) {
    say(form, sending);
    busy(form, true);
    try {
      if (!(await save(form))) return null;
      const r = await window.alarmcloud.api("POST", url, {});
      if (!r.ok) { say(form, r.message, "error"); return null; }
      const [text, kind] = outcome(r.data || {});
      say(form, text, kind);
      return r.data;
    } finally {
      busy(form, false);
    }
  }

  // the card's own submit: save, then say whether the channel is on
  function onSubmit(selector, save, on, off) {
    document.addEventListener("submit", async (e) => {
      const form = e.target;
      if (!form.matches(selector)) return;
      e.preventDefault();
      say(form, "");
      busy(form, true);
      const saved = await save(form);
      busy(form, false);
      if (saved) say(form, saved.enabled ? on : off, "ok");
    });
  }

  return { say, busy, readToken, tokenSaved, testOutcome, runTest, onSubmit };
})();

// ------------------------------------------------------------ notifications: push to the phone (ntfy)
(function () {
  const api = window.alarmcloud.api;
  const { say, readToken, tokenSaved, testOutcome, runTest, onSubmit } = window.alarmcloud.card;

  async function save(form) {
    const body = { enabled: form.elements.enabled.checked, url: form.elements.url.value.trim(),
                   picture: form.elements.picture.checked };
    if (body.enabled && !body.url) { say(form, "Enter your ntfy topic to switch push on.", "error"); return null; }
    readToken(form, body);
    const r = await api("PATCH", "/api/v1/me/push", body);
    if (!r.ok) { say(form, r.message, "error"); return null; }
    tokenSaved(form, r.data.has_token, "[data-push-remove-token]", "none");
    form.elements.enabled.checked = r.data.enabled;
    return r.data;
  }

  onSubmit("[data-push]", save, "Push notifications saved and on.", "Push settings saved; push is off.");

  document.addEventListener("click", async (e) => {
    const btn = e.target.closest("button[data-push-test]");
    if (!btn) return;
    await runTest(btn.closest("form"), "Sending a test push…", save, "/api/v1/me/push/test",
                  (d) => testOutcome(d, "Test push", "Test push delivered to the push server: check your phone.",
                                     "Check the topic URL and the access token."));
  });
})();

// ------------------------------------------------------------ notifications: Telegram (the person's own bot)
(function () {
  const api = window.alarmcloud.api;
  const { say, busy, readToken, tokenSaved, testOutcome, runTest, onSubmit } = window.alarmcloud.card;

  function showProblem(form, problem) {
    const el = form.querySelector("[data-telegram-problem]");
    el.textContent = problem ? "The last message did not arrive: " + problem : "";
    el.hidden = !problem;
  }

  async function save(form) {
    const body = { enabled: form.elements.enabled.checked, chat_id: form.elements.chat_id.value.trim(),
                   picture: form.elements.picture.checked };
    readToken(form, body);
    const r = await api("PATCH", "/api/v1/me/telegram", body);
    if (!r.ok) { say(form, r.message, "error"); return null; }
    tokenSaved(form, r.data.has_token, "[data-telegram-remove-token]", "not set");
    form.elements.enabled.checked = r.data.enabled;
    showProblem(form, r.data.problem);
    return r.data;
  }

  function listChats(form, chats) {
    const box = form.querySelector("[data-telegram-chat-list]");
    box.replaceChildren();
    chats.forEach((c) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.telegramChat = c.chat_id;
      b.textContent = (c.title || c.chat_id) + " (" + (c.type || "chat") + ", " + c.chat_id + ")";
      box.append(b);
    });
    box.hidden = chats.length === 0;
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const form = document.querySelector("form[data-telegram]");
    if (!form) return;
    const r = await api("GET", "/api/v1/me/telegram");
    if (r.ok) showProblem(form, r.data.problem);
  });

  onSubmit("[data-telegram]", save, "Telegram notifications saved and on.", "Telegram settings saved; Telegram is off.");

  document.addEventListener("click", async (e) => {
    const pick = e.target.closest("button[data-telegram-chat]");
    if (pick) {
      const form = pick.closest("form");
      form.elements.chat_id.value = pick.dataset.telegramChat;
      form.querySelector("[data-telegram-chat-list]").hidden = true;
      say(form, "Chat chosen. Apply the settings to keep it.", "ok");
      return;
    }
    const find = e.target.closest("button[data-telegram-chats]");
    if (find) {
      const form = find.closest("form");
      const token = form.elements.token.value.trim();
      say(form, "Asking Telegram which chats wrote to your bot…");
      busy(form, true);
      try {
        const r = await api("POST", "/api/v1/me/telegram/chats", token ? { token } : {});
        if (!r.ok) { say(form, r.message, "error"); return; }
        const chats = r.data.chats || [];
        listChats(form, chats);
        if (chats.length === 1) {
          form.elements.chat_id.value = chats[0].chat_id;
          say(form, "Found your chat with the bot. Apply the settings to keep it.", "ok");
        } else if (chats.length) {
          say(form, "Choose your chat.", "ok");
        } else {
          say(form, "No chat found: send any message to your bot in Telegram, then try again.", "error");
        }
      } finally {
        busy(form, false);
      }
      return;
    }
    const btn = e.target.closest("button[data-telegram-test]");
    if (!btn) return;
    const form = btn.closest("form");
    const sent = await runTest(form, "Sending a test message…", save, "/api/v1/me/telegram/test",
                               (d) => testOutcome(d, "Test message", "Test message delivered to Telegram: check the chat.",
                                                  "Check the bot token and the chat."));
    if (sent) {
      const again = await api("GET", "/api/v1/me/telegram");
      if (again.ok) showProblem(form, again.data.problem);
    }
  });
})();

// ------------------------------------------------------------ storage: off-site copies into the owner's own bucket
(function () {
  const api = window.alarmcloud.api;
  const { say, readToken, tokenSaved, runTest, onSubmit } = window.alarmcloud.card;

  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  function showStatus(form, d) {
    const parts = [d.last_copy_at ? "Last copy: " + when(d.last_copy_at) + "." : "No clip copied yet."];
    if (d.waiting) parts.push(d.waiting + (d.waiting === 1 ? " copy is" : " copies are") + " waiting.");
    if (d.given_up) parts.push(d.given_up + (d.given_up === 1 ? " copy was" : " copies were") + " given up after many attempts.");
    form.querySelector("[data-offsite-status]").textContent = parts.join(" ");
    const el = form.querySelector("[data-offsite-problem]");
    el.textContent = d.last_error ? "The last copy did not arrive: " + d.last_error : "";
    el.hidden = !d.last_error;
    form.querySelector("[data-offsite-retry]").hidden = !d.given_up;
    form.querySelector("[data-offsite-backfill]").hidden = !d.enabled;
    form.querySelector("[data-offsite-backfill-hint]").hidden = !d.enabled;
    showPrune(form, d);
    clearTimeout(form.offsiteTimer);  // while copies wait, the count goes down on its own
    if (d.waiting) form.offsiteTimer = setTimeout(() => refresh(form), 15000);
  }

  // deleting old copies: the saved number of days, the last run, and the button that runs it now
  function showPrune(form, d) {
    const line = form.querySelector("[data-offsite-prune-status]");
    const p = d.prune;
    line.textContent = !d.keep_days ? "" : !p ? "Copies older than " + d.keep_days + " days are deleted once a day."
      : p.error ? "Old copies could not be deleted (" + when(p.last_at) + "): " + p.error
      : "Old copies last looked for " + when(p.last_at) + ": " + (p.deleted_files ? p.deleted_files + " files deleted." : "none to delete.");
    line.classList.toggle("error", Boolean(d.keep_days && p && p.error));
    line.hidden = !d.keep_days;
    form.querySelector("[data-offsite-prune]").hidden = !d.keep_days;
  }

  function kindOf(form) { const k = form.elements.kind.value; return k === "sftp" || k === "webdav" ? k : "s3"; }

  // the fields of the chosen kind only: the other kind's settings stay as they are
  function showKind(form) {
    const kind = kindOf(form);
    form.querySelectorAll("[data-offsite-kind]").forEach((el) => { el.hidden = el.dataset.offsiteKind !== kind; });
  }

  // what the server holds now (the SFTP key and the trusted host key are the server's)
  function showSftp(form, d) {
    form.elements.sftp_public_key.value = d.sftp_public_key || "";
    form.elements.sftp_host_key.value = d.sftp_host_key || "";
    form.querySelector("[data-offsite-copy-key]").hidden = !d.sftp_public_key;
    form.querySelector("[data-offsite-new-key]").hidden = !d.sftp_public_key;
  }

  async function save(form, forTest) {
    const kind = kindOf(form);
    const days = form.elements.keep_days.value.trim();
    const body = { enabled: form.elements.enabled.checked, scope: form.elements.scope.value, kind: kind,
                   prefix: form.elements.prefix.value.trim(), keep_days: days ? Number(days) : null,
                   encrypt_to: form.elements.encrypt_to.value.trim() || null };
    if (kind === "sftp") {
      ["sftp_host", "sftp_user", "sftp_host_key"].forEach((k) => { body[k] = form.elements[k].value.trim(); });
      const port = form.elements.sftp_port.value.trim();
      body.sftp_port = port ? Number(port) : null;
      // the first test trusts the server's host key: the copies are switched on after it (see the test button)
      if (forTest && !body.sftp_host_key) delete body.enabled;
    } else if (kind === "webdav") {
      ["webdav_url", "webdav_user"].forEach((k) => { body[k] = form.elements[k].value.trim(); });
      const password = form.elements.webdav_password.value.trim();
      if (password) body.webdav_password = password;
    } else {
      ["endpoint", "region", "bucket", "access_key_id"].forEach((k) => { body[k] = form.elements[k].value.trim(); });
      const secret = {};
      readToken(form, secret);
      if ("token" in secret) body.secret_key = secret.token;
    }
    const r = await api("PATCH", "/api/v1/me/offsite", body);
    if (!r.ok) { say(form, r.message, "error"); return null; }
    tokenSaved(form, r.data.has_secret_key, "[data-offsite-remove-token]", "not set");
    form.elements.token.placeholder = r.data.has_secret_key ? "a key is saved; type a new one to replace it" : "not set";
    if ("enabled" in body) form.elements.enabled.checked = r.data.enabled;  // else kept for after the test
    showSftp(form, r.data);
    form.elements.encrypt_to.value = r.data.encrypt_to || "";  // as age-keygen prints it
    form.elements.webdav_password.value = "";  // never shown again
    form.elements.webdav_password.placeholder = r.data.has_webdav_password
      ? "a password is saved; type a new one to replace it" : "not set";
    showStatus(form, r.data);
    return r.data;
  }

  async function refresh(form) {
    const r = await api("GET", "/api/v1/me/offsite");
    if (r.ok) showStatus(form, r.data);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.querySelector("form[data-offsite]");
    if (form) refresh(form);
  });

  onSubmit("[data-offsite]", save, "Saved; new clips are copied.", "Saved; copies are off.");

  document.addEventListener("change", (e) => {
    if (e.target.matches("form[data-offsite] input[name=kind]")) showKind(e.target.form);
  });

  document.addEventListener("click", async (e) => {
    const again = e.target.closest("button[data-offsite-retry]");
    if (again) {
      const form = again.closest("form");
      const r = await api("POST", "/api/v1/me/offsite/retry", {});
      if (!r.ok) { say(form, r.message, "error"); return; }
      showStatus(form, r.data);
      say(form, "The given-up copies are queued again.", "ok");
      return;
    }
    const backfill = e.target.closest("button[data-offsite-backfill]");
    if (backfill) {
      const form = backfill.closest("form");
      backfill.disabled = true;
      say(form, "Looking for stored clips without a copy…", "");
      const r = await api("POST", "/api/v1/me/offsite/backfill", {});
      backfill.disabled = false;
      if (!r.ok) { say(form, r.message, "error"); return; }
      showStatus(form, r.data);
      const n = r.data.queued;
      say(form, n ? n + (n === 1 ? " stored clip is" : " stored clips are") + " queued for copying."
                  : "Every stored clip that matches has its copy already (or is queued): nothing new to copy.", "ok");
      return;
    }
    const prune = e.target.closest("button[data-offsite-prune]");
    if (prune) {
      const form = prune.closest("form");
      prune.disabled = true;
      say(form, "Looking for old copies…", "");
      const look = await api("POST", "/api/v1/me/offsite/prune", { dry_run: true });
      if (!look.ok) { prune.disabled = false; say(form, look.message, "error"); return; }
      const c = look.data.result;
      const kept = c.kept_clips ? " The copies of " + c.kept_clips + (c.kept_clips === 1 ? " clip" : " clips") + " you keep stay." : "";
      if (!c.deleted_files) {
        prune.disabled = false;
        say(form, "No copies from before " + c.before + " to delete." + kept, "ok");
        return;
      }
      const what = c.deleted_clips + (c.deleted_clips === 1 ? " clip" : " clips") + " (" + c.deleted_files + " files, " +
                   window.alarmcloud.sizeText(c.deleted_bytes) + ")";
      if (!confirm("Delete the copies of " + what + " from before " + c.before + " from your storage? This cannot be undone." + kept)) {
        prune.disabled = false;
        say(form, "Nothing was deleted.", "");
        return;
      }
      say(form, "Deleting old copies…", "");
      const r = await api("POST", "/api/v1/me/offsite/prune", {});
      prune.disabled = false;
      if (!r.ok) { say(form, r.message, "error"); refresh(form); return; }
      showStatus(form, r.data);
      const n = r.data.result.deleted_clips;
      say(form, "Deleted the copies of " + n + (n === 1 ? " clip" : " clips") + " from before " + r.data.result.before + "." + kept, "ok");
      return;
    }
    const copy = e.target.closest("button[data-offsite-copy-key]");
    if (copy) {
      const form = copy.closest("form");
      const text = form.elements.sftp_public_key;
      text.select();
      try {
        await navigator.clipboard.writeText(text.value);
        say(form, "The key is copied: add it as one line to ~/.ssh/authorized_keys on your server.", "ok");
      } catch (err) {
        say(form, "Select the key and copy it yourself (this browser did not let the page copy).", "");
      }
      return;
    }
    const renew = e.target.closest("button[data-offsite-new-key]");
    if (renew) {
      const form = renew.closest("form");
      if (!confirm("Make a new key? The copies stop until you replace the old key's line in authorized_keys on your server with the new one.")) return;
      const r = await api("POST", "/api/v1/me/offsite/sftp-key", {});
      if (!r.ok) { say(form, r.message, "error"); return; }
      showSftp(form, r.data);
      say(form, "A new key is made: put it into authorized_keys on your server instead of the old one.", "ok");
      return;
    }
    const btn = e.target.closest("button[data-offsite-test]");
    if (!btn) return;
    const form = btn.closest("form");
    const sftp = kindOf(form) === "sftp";
    const wanted = form.elements.enabled.checked;
    const d = await runTest(form, sftp ? "Logging in to the SFTP server…" : kindOf(form) === "webdav"
                              ? "Writing a test file to the WebDAV folder…" : "Writing a test object to the bucket…",
                            (f) => save(f, true), "/api/v1/me/offsite/test",
                            (d) => [sftp ? "The SFTP server works: " + d.message + "."
                                         : kindOf(form) === "webdav" ? "The WebDAV folder works: " + d.message + "."
                                         : d.deleted ? "The bucket works: a test object was written and deleted again."
                                                     : "The bucket works: " + d.message + ".", "ok"]);
    if (d && d.host_key) form.elements.sftp_host_key.value = d.host_key;
    if (d && d.host_key_new && wanted) {  // now that the server's key is trusted, the copies can be switched on
      form.elements.enabled.checked = true;
      const on = await save(form);
      if (on) say(form, "The SFTP server works: " + d.message + ". New clips are copied.", "ok");
    }
  });
})();

// ------------------------------------------------------------ API tokens and signed-in devices (account page)
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const { api, flash, showError, busy, localTimes } = window.alarmcloud;

  function cell(...content) {
    const td = document.createElement("td");
    td.append(...content);
    return td;
  }

  function row(token) {
    const tr = document.createElement("tr");
    tr.dataset.tokenRow = token.id;
    const btn = document.createElement("button");
    btn.type = "button";
    btn.textContent = "Revoke";
    btn.dataset.tokenRevoke = token.id;
    btn.dataset.name = token.name;
    btn.setAttribute("aria-label", "Revoke the token " + token.name);
    const made = document.createElement("span");
    made.className = "muted";
    const time = document.createElement("time");
    time.setAttribute("datetime", token.created_at);
    made.append("made ", time);
    tr.append(cell(token.name, document.createElement("br"), made),
              cell(token.read_only ? "read" : "read and change"), cell("never"), cell(btn));
    localTimes(tr);
    return tr;
  }

  function listShown(box) {
    const any = !!$("tbody tr", box);
    $("[data-tokens-table]", box).hidden = !any;
    $("[data-tokens-none]", box).hidden = any;
  }

  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.matches("[data-token-create]")) return;
    e.preventDefault();
    showError(form, "");
    const box = form.closest("[data-tokens]");
    const name = form.elements.name.value.trim();
    if (!name) { showError(form, "Give the token a name, so that you know later what uses it."); return; }
    busy(form, true);
    const r = await api("POST", "/api/v1/tokens", { name, read_only: form.elements.read_only.checked });
    busy(form, false);
    if (!r.ok) { showError(form, r.message); return; }
    form.reset();
    $("tbody", box).prepend(row({ id: r.data.id, name: r.data.name, read_only: r.data.read_only,
                                  created_at: new Date().toISOString() }));
    listShown(box);
    const shown = $("[data-token-new]", box);
    $("[data-token-value]", shown).textContent = r.data.token;
    const example = $("[data-token-example]", shown);
    const base = example.dataset.base || location.origin;
    example.textContent = "curl -H 'Authorization: Bearer " + r.data.token + "' '" + base + "/api/v1/events?limit=5'";
    shown.hidden = false;
    $("h3", shown).focus();
  });

  // ------------------------------------------------------------ account: signed-in devices
  document.addEventListener("click", async (e) => {
    const btn = e.target.closest("button[data-session-end], button[data-sessions-end-others]");
    if (!btn) return;
    const box = btn.closest("[data-sessions]");
    if (btn.matches("[data-sessions-end-others]")) {
      if (!confirm("Sign out every other device? They need your password (and code) to sign in again.")) return;
      btn.disabled = true;
      const r = await api("DELETE", "/api/v1/me/sessions");
      btn.disabled = false;
      if (!r.ok) return flash(r.message, "bad");
      $$("tr[data-session-row]:not([data-current])", box).forEach((tr) => tr.remove());
      $("[data-sessions-others]", box).hidden = true;
      return flash(r.data.ended === 1 ? "Signed out 1 other device." : "Signed out " + r.data.ended + " other devices.");
    }
    const current = btn.hasAttribute("data-current");
    if (current && !confirm("Sign out here?")) return;
    btn.disabled = true;
    const r = await api("DELETE", "/api/v1/me/sessions/" + encodeURIComponent(btn.dataset.sessionEnd));
    if (!r.ok && r.status !== 404) { btn.disabled = false; return flash(r.message, "bad"); }  // 404: ended meanwhile
    if (current) return location.assign("/login");
    btn.closest("tr").remove();
    $("[data-sessions-others]", box).hidden = $$("tr[data-session-row]", box).length < 2;
    flash("Signed out.");
  });

  document.addEventListener("click", async (e) => {
    const btn = e.target.closest("button[data-token-revoke]");
    if (!btn) return;
    if (!confirm("Revoke the token \u201c" + btn.dataset.name + "\u201d? Whatever uses it stops working at once.")) return;
    const box = btn.closest("[data-tokens]");
    btn.disabled = true;
    const r = await api("DELETE", "/api/v1/tokens/" + encodeURIComponent(btn.dataset.tokenRevoke));
    if (!r.ok && r.status !== 404) {  // 404: already revoked elsewhere
      btn.disabled = false;
      showError($("[data-token-create]", box), r.message);
      return;
    }
    btn.closest("tr").remove();
    $("[data-token-new]", box).hidden = true;  // a token shown for copying may be the one just revoked
    listShown(box);
    flash("Token \u201c" + btn.dataset.name + "\u201d revoked.");
  });
})();
