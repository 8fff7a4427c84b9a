"""The one helper for shapes in error messages."""


def shape_str(t) -> str:
    """``(2, 3, 17)`` for a tensor or array of that shape (a torch.Size prints as ``torch.Size([...])``)."""
    return "(" + ", ".join(str(s) for s in t.shape) + ")"
