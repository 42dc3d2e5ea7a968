// Accessibility and layout checks run inside a page (tests/e2e/test_ui_audit.py): returns a list of problems.
// Contrast follows WCAG 2.1 (relative luminance; 4.5:1 for text, 3:1 for large text of >= 24 px or >= 18.66 px bold).
() => {
  const problems = [];
  const visible = (el) => {
    if (!(el instanceof Element)) return false;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden" || st.display === "none") return false;
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && !el.closest("[hidden]");
  };
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "") +
    (el.getAttribute("name") ? "[name=" + el.getAttribute("name") + "]" : "");

  // the document: language, one h1, no skipped heading levels
  if (!document.documentElement.lang) problems.push("no lang attribute on <html>");
  if (!document.title.trim()) problems.push("empty <title>");
  const hs = Array.from(document.querySelectorAll("h1, h2, h3, h4, h5, h6")).filter(visible);
  if (hs.filter((h) => h.tagName === "H1").length !== 1) problems.push("expected exactly one visible h1");
  let last = 0;
  for (const h of hs) {
    const lvl = Number(h.tagName[1]);
    if (lvl > last + 1) problems.push("heading level skipped before: " + h.textContent.trim().slice(0, 40));
    last = lvl;
  }

  // every form control has an accessible name; buttons and links have text
  const nameOf = (el) => {
    const lab = el.labels && el.labels.length ? Array.from(el.labels).map((l) => l.textContent).join(" ") : "";
    const by = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
      .map((id) => (document.getElementById(id) || {}).textContent || "").join(" ");
    return (el.getAttribute("aria-label") || by || lab || el.getAttribute("title") || "").trim();
  };
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    if (!nameOf(el)) problems.push("form control without a label: " + describe(el));
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!visible(el)) continue;
    const img = el.querySelector("img[alt]");
    const txt = (el.textContent + " " + (el.getAttribute("aria-label") || "") + " " + (img ? img.alt : "")).trim();
    if (!txt) problems.push("button or link without text: " + describe(el));
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("img without alt: " + img.getAttribute("src"));
  }

  // colour contrast of every visible text
  const parse = (c) => {
    const m = c && c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const st = getComputedStyle(e);
      const c = parse(st.backgroundColor);
      if (c && c[3] > 0) {
        const op = Number(st.opacity);
        layers.push([c[0], c[1], c[2], c[3] * (isNaN(op) ? 1 : op)]);
        if (c[3] >= 1) break;
      }
    }
    let bg = [255, 255, 255, 1];
    if (!layers.length || layers[layers.length - 1][3] < 1) {
      const root = parse(getComputedStyle(document.documentElement).backgroundColor);
      if (root && root[3] > 0) bg = over(root, bg);
    }
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const effectiveOpacity = (el) => { let o = 1; for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity); return o; };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const el = n.parentElement;
    if (!el || seen.has(el) || !visible(el) || el.closest("svg, option, script, style, [disabled], .sr-only")) continue;
    seen.add(el);
    const st = getComputedStyle(el);
    const bg = background(el);
    const fgc = parse(st.color);
    const fg = over([fgc[0], fgc[1], fgc[2], fgc[3] * effectiveOpacity(el)], bg);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    const r = ratio(fg, bg);
    if (r < (large ? 3 : 4.5)) {
      problems.push("contrast " + r.toFixed(2) + ":1 for '" + n.textContent.trim().slice(0, 30) + "' in " + describe(el));
    }
  }
  // text inside the SVG charts (fill colour against the card)
  for (const t of document.querySelectorAll("svg text")) {
    if (!visible(t)) continue;
    const fill = parse(getComputedStyle(t).fill);
    if (!fill) continue;
    const r = ratio(over(fill, background(t.closest("svg").parentElement)), background(t.closest("svg").parentElement));
    if (r < 4.5) problems.push("contrast " + r.toFixed(2) + ":1 for chart text '" + t.textContent + "'");
  }
  // placeholders
  for (const el of document.querySelectorAll("input[placeholder]")) {
    if (!visible(el)) continue;
    const c = parse(getComputedStyle(el, "::placeholder").color);
    const bg = background(el);
    if (c && ratio(over(c, bg), bg) < 4.5) problems.push("placeholder contrast in " + describe(el));
  }

  // no horizontal scrolling
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1) problems.push("horizontal scroll: " + doc.scrollWidth + " > " + doc.clientWidth);
  const inScroller = (el) => {
    for (let e = el.parentElement; e && e !== document.body; e = e.parentElement) {
      if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(e).overflowX)) return true;
    }
    return false;
  };
  for (const el of document.querySelectorAll("body *")) {
    if (!visible(el) || inScroller(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.right > doc.clientWidth + 1 && getComputedStyle(el).position !== "fixed") {
      problems.push("sticks out on the right: " + describe(el) + " (" + Math.round(r.right) + " px)");
      break;
    }
  }
  return problems;
}
