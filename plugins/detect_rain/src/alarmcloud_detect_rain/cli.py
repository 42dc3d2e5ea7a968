"""``alarmcloud rain ...`` operator commands."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from alarmcloud_detect_rain.recalibrate import MIN_CLIPS_TO_REFIT, feedback_clips, recalibrate


@click.group("rain")
def rain() -> None:
    """Rain / snow false-alarm detector."""


@rain.command("recalibrate")
@click.option("--samples", "samples", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with released feedback clips: {rain,snow}/*.mp4 (weather) and "
              "{not_rain,not_snow}/*.mp4. Default: the clips owners released on this deployment (its training "
              "area: <data_dir>/training/rain, or the training/rain/ keys of its S3 bucket).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The deployment's data directory (without --samples).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The deployment's settings file (without --samples; env ALARMCLOUD_CONFIG).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the new ONNX model; point [plugins.rain] model_path at it.")
@click.option("--base", "base", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Model to start from (default: the shipped model).")
@click.option("--strength", default=None, type=float,
              help="How strongly the refit output layer is held near the base model (1: weakly, 1000: closely). "
              "Default: chosen by cross-validation on the feedback clips; when no refit predicts the held-back "
              f"clips better than the base model, or there are fewer than {MIN_CLIPS_TO_REFIT} clips of either label, "
              "the base model's output layer is kept.")
@click.option("--cnn-weight", "cnn_weight", default=None, type=click.FloatRange(0.0, 1.0),
              help="Weight of the spike-map CNN fused with the model, as [plugins.rain] cnn_weight (0: recalibrate "
              "the MLP alone). Default: the deployment's setting, else as the detector fuses the base model (0.5 "
              "for the shipped one). The clips are scored fused, and the written model carries the weight.")
def recalibrate_cmd(samples: Path | None, data_dir: Path | None, config_file: Path | None, out: Path,
                    base: Path | None, strength: float | None, cnn_weight: float | None) -> None:
    """Recalibrate the rain model from clips owners released with a rain/snow or not_rain/not_snow label.

    The clips are scored as the detector scores them (the MLP fused with the spike-map CNN); only the MLP's output
    layer may be refit, and only when that predicts held-back feedback better. Point [plugins.rain] model_path at
    the written model: the detector fuses it with the CNN as it was measured here.
    """
    if samples is not None:
        _recalibrate(samples, out, base, strength, cnn_weight=cnn_weight)
        return
    from alarmcloud.app import TrainingArea
    from alarmcloud.blobstore import BlobStoreUnavailable, make_blob_store
    from alarmcloud.cli_common import settings_from

    st = settings_from(config_file, data_dir=data_dir)
    try:
        with TrainingArea(st.data_dir / "training", make_blob_store(st)).folder("rain") as folder:
            click.echo(f"released feedback clips of the deployment: {len(feedback_clips(folder))}")
            rain = st.plugin_settings("rain")
            threshold = rain.get("threshold")  # the deployment's, checked for false positives
            shift = rain.get("score_shift")  # the deployment's per-codec shift, if it replaces the model's
            if cnn_weight is None and rain.get("cnn_weight") is not None:
                cnn_weight = float(rain["cnn_weight"])
            _recalibrate(folder, out, base, strength, None if threshold is None else float(threshold),
                         None if shift is None else {str(k): float(v) for k, v in shift.items()},
                         cnn_weight, None if rain.get("cnn_path") is None else Path(str(rain["cnn_path"])))
    except BlobStoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _recalibrate(samples: Path, out: Path, base: Path | None, strength: float | None,
                 threshold: float | None = None, score_shift: dict[str, float] | None = None,
                 cnn_weight: float | None = None, cnn_path: Path | None = None) -> None:
    total = len(feedback_clips(samples))
    with Progress(TextColumn("[bold]decoding feedback clips"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn()) as progress:
        task = progress.add_task("clips", total=total)
        try:
            report = recalibrate(samples, out, base_model_path=base, strength=strength,
                                 on_clip=lambda _p: progress.advance(task), threshold=threshold,
                                 score_shift=score_shift, cnn_path=cnn_path, cnn_weight=cnn_weight)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"recalibrated on {report.clips} clips (rain {report.rain_clips}, not_rain {report.not_rain_clips}, "
        f"skipped {report.skipped}); clip accuracy {report.accuracy_before:.3f} -> {report.accuracy_after:.3f}"
    )
    click.echo(f"scored fused with the spike-map CNN (weight {report.cnn_weight:g})" if report.cnn_weight > 0
               else "scored with the MLP alone (the CNN is off)", nl=False)
    click.echo(f"; refits checked at threshold {report.threshold:g}")
    choice = report.choice
    if choice.strength is None:
        click.echo(f"kept the base model's output layer: {choice.reason}"
                   + (f" (AUC out of fold: base {choice.auc_base:.3f})" if choice.auc_base is not None else ""))
    elif choice.auc_base is not None and choice.auc_chosen is not None:
        click.echo(f"refit the output layer with strength {choice.strength:g}: AUC out of fold "
                   f"{choice.auc_base:.3f} -> {choice.auc_chosen:.3f} over {choice.folds} folds")
    else:
        click.echo(f"refit the output layer with strength {choice.strength:g}")
    click.echo("on the feedback clips (owners pick which clips they mark, so take these as a hint for the "
               "per-camera threshold option, not as the detector's rates):")
    click.echo("  threshold  weather recall  clear false positives")
    for t, recall, fpr in report.by_threshold:
        click.echo(f"  {t:9.2f}  {100 * recall:13.1f} %  {100 * fpr:20.1f} %")
    fused = (f" (the detector fuses it with the CNN at weight {report.cnn_weight:g}, as measured here)"
             if report.cnn_weight > 0 else " (the detector runs it alone)")
    click.echo(f"wrote {report.out}; set [plugins.rain] model_path = \"{report.out}\" to use it{fused}")
