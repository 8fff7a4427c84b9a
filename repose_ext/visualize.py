"""Pictures of poses: 2D input beside 3D poses, as a PNG of one frame or a GIF of a clip.

matplotlib is imported inside the functions, so the package imports without it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .data.skeleton import H36M_PARENTS

_COLORS = ("tab:green", "tab:blue", "tab:red")


def _draw_2d(ax, kp, occluded, parents, title):
    ax.cla()
    for j, p in enumerate(parents):
        if p >= 0:
            ax.plot(kp[[j, p], 0], kp[[j, p], 1], color="0.3", lw=1.5)
    vis = ~occluded
    ax.scatter(kp[vis, 0], kp[vis, 1], s=12, color="tab:green", label="visible")
    if occluded.any():
        ax.scatter(kp[occluded, 0], kp[occluded, 1], s=28, marker="x", color="tab:red", label="occluded / low score")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=6)


def _draw_3d(ax, pose, parents, title, color, limits):
    ax.cla()
    # camera coordinates (x right, y down, z forward) shown with z as depth and -y up
    x, y, z = pose[:, 0], pose[:, 2], -pose[:, 1]
    for j, p in enumerate(parents):
        if p >= 0:
            ax.plot([x[j], x[p]], [y[j], y[p]], [z[j], z[p]], color=color, lw=2)
    ax.set_xlim(-limits, limits)
    ax.set_ylim(-limits, limits)
    ax.set_zlim(-limits, limits)
    ax.set_xlabel("x")
    ax.set_ylabel("depth")
    ax.set_zlabel("up")
    ax.set_title(title, fontsize=9)


def render_clip(path: str, keypoints: np.ndarray, poses: Sequence[np.ndarray], titles: Sequence[str],
                occluded: Optional[np.ndarray] = None, parents=H36M_PARENTS, fps: int = 10,
                frames: Optional[Sequence[int]] = None) -> str:
    """Write 2D input and one or more 3D pose sequences side by side, as a GIF (or a PNG of one frame).

    Args:
        path: output file; ``.gif`` animates ``frames``, anything else (``.png``) draws the first of them.
        keypoints: 2D input in any image-like units (pixels or normalised), (T, J, 2).
        poses: 3D sequences to show, each (T, J, 3), root-relative, same units among them.
        titles: one title per 3D sequence.
        occluded: optional (T, J) bool; occluded joints are marked on the 2D panel.
        parents: skeleton tree.
        fps: GIF frame rate.
        frames: frame indices to draw (default: every frame, at most 120 evenly spaced).

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    t = keypoints.shape[0]
    occluded = np.zeros(keypoints.shape[:2], dtype=bool) if occluded is None else np.asarray(occluded, dtype=bool)
    if frames is None:
        frames = np.linspace(0, t - 1, num=min(t, 120)).round().astype(int)
    limits = max(float(np.nanmax(np.abs(p))) for p in poses) * 1.05 or 1.0
    fig = plt.figure(figsize=(4 * (1 + len(poses)), 4))
    ax2d = fig.add_subplot(1, 1 + len(poses), 1)
    axes = [fig.add_subplot(1, 1 + len(poses), 2 + i, projection="3d") for i in range(len(poses))]

    def draw(f):
        _draw_2d(ax2d, keypoints[f], occluded[f], parents, f"2D input, frame {f}")
        for i, (ax, pose) in enumerate(zip(axes, poses)):
            _draw_3d(ax, pose[f], parents, titles[i], _COLORS[i % len(_COLORS)], limits)

    if str(path).endswith(".gif"):
        FuncAnimation(fig, draw, frames=list(frames)).save(path, writer=PillowWriter(fps=fps))
    else:
        draw(frames[0])
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
