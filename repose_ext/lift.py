"""Lift a detector's 2D keypoints to 3D: ``python -m repose_ext.lift INPUT --output pose3d.npz [options]``.

INPUT is a COCO keypoint-results JSON (MMPose, Detectron2, YOLO-pose), an AlphaPose results JSON, an OpenPose
``--write_json`` folder, or an npz/npy array (T, K, 2|3) in pixels. Formats: h36m17, coco17, halpe26, body25,
coco18 (detected from the file where unambiguous, else ``--format``). The main subject is tracked and lifted
(``--person N`` for track N, ``--all-persons`` for all); ``--fps`` resamples to the model's rate and back.

Output by extension: ``.npz`` (pose3d (N, 17, 3) mm root-relative, frame, frame_id, track, filled, scores,
keypoints, joints, units), ``.json`` or ``.csv``; written atomically. A bad input ends with one line naming the
file and the problem, exit code 2, and no output file. Nothing is unpickled. See :mod:`repose_ext.lifter`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from .keypoints.formats import FORMATS
from .keypoints.readers import KeypointInputError


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m repose_ext.lift", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", help="detections: .json, OpenPose folder, .npz or .npy")
    ap.add_argument("--input", dest="input_option", metavar="INPUT", help="the same as the positional INPUT")
    ap.add_argument("--output", "-o", required=True, help="result file: .npz, .json or .csv")
    ap.add_argument("--format", choices=FORMATS, help="joint order of the input (needed for 17-keypoint arrays)")
    ap.add_argument("--width", type=float, help="image width in pixels (if the file does not say)")
    ap.add_argument("--height", type=float, help="image height in pixels (if the file does not say)")
    ap.add_argument("--fps", type=float, help="frame rate of the input (default: the model's, 50)")
    who = ap.add_mutually_exclusive_group()
    who.add_argument("--person", type=int, help="lift track N (0 = main subject, the default)")
    who.add_argument("--all-persons", action="store_true", help="lift every track")
    ap.add_argument("--checkpoint", help="a model.pt / best.pt of train.py (default: the bundled model)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--no-flip-test", action="store_true", help="no flip test-time averaging")
    ap.add_argument("--render", help="also draw the main track (.gif animates, .png shows one frame)")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    source = args.input_option or args.input
    if not source:
        ap.error("give the detections to lift (INPUT)")
    if args.input_option and args.input:
        ap.error("give INPUT once (positional or --input)")
    render_tmp = None
    try:
        from .lifter import Lifter

        render_tmp = _render_target(args.render)
        lifter = Lifter(args.checkpoint, device=args.device, flip_test=not args.no_flip_test)
        result = lifter.lift(source, format=args.format, width=args.width, height=args.height, fps=args.fps,
                             person=args.person, all_persons=args.all_persons)
        if args.render:  # drawn before the result is written: a failing render leaves no output behind
            from .visualize import render_clip

            main_rows = result.track == result.track[0]
            render_clip(render_tmp, result.keypoints[main_rows], [result.pose3d[main_rows]], ["lifted 3D (mm)"],
                        occluded=result.scores[main_rows] < 0.3)
        written = result.save(args.output)
        if args.render:
            os.replace(render_tmp, args.render)
    except KeypointInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if render_tmp is not None and os.path.exists(render_tmp):
            os.remove(render_tmp)
    tracks = len(set(result.track.tolist()))
    print(f"lifted {len(result.frame)} frames of {tracks} track(s) ({int(result.filled.sum())} filled) -> {written}"
          + (f"; rendered -> {args.render}" if args.render else ""))
    return 0


def _render_target(path):
    """A temporary file beside ``--render`` (checked before any work), or None."""
    if path is None:
        return None
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".gif", ".png"):
        raise KeypointInputError(f"--render must end in .gif or .png; got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise KeypointInputError(f"--render {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".render-", suffix=ext, dir=folder)
    os.close(fd)
    return tmp


if __name__ == "__main__":
    raise SystemExit(main())
