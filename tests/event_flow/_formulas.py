"""Closed-form dense MACs of the event_flow networks (docs/seed_models.md section 4.1), per forward pass."""

from __future__ import annotations


def conv(h: int, w: int, cin: int, cout: int, k: int, *, stride: int = 1) -> int:
    """MACs of a k x k conv with padding k // 2 (output (h / stride) x (w / stride))."""
    return (h // stride) * (w // stride) * cout * cin * k * k


def firenet_family(h: int, w: int, c: int = 32, bins: int = 2, hidden_convs: int = 8) -> int:
    """Head (bins -> C, 3x3) + ``hidden_convs`` C -> C 3x3 convs + pred (C -> 2, 1x1)."""
    return conv(h, w, bins, c, 3) + hidden_convs * conv(h, w, c, c, 3) + conv(h, w, c, 2, 1)


def ann_firenet(h: int, w: int, c: int = 32, bins: int = 2) -> int:
    """Head + 2 ConvGRUs (3 gate convs 2C -> C) + 4 C -> C convs + pred."""
    return conv(h, w, bins, c, 3) + 2 * 3 * conv(h, w, 2 * c, c, 3) + 4 * conv(h, w, c, c, 3) + conv(h, w, c, 2, 1)


def _decoders(h: int, w: int, c: int, n: int) -> int:
    """Decoders (upsample x2 + 3x3 conv of cat[x, skip(, pred)]) and their 1x1 flow predictions."""
    total = 0
    for i in range(n):
        cin, cout = c * 2 ** (n - i), c * 2 ** (n - 1 - i)
        side = 2 ** (n - 1 - i)
        total += conv(h // side, w // side, 2 * cin + (0 if i == 0 else 2), cout, 3)
        total += conv(h // side, w // side, cout, 2, 1)
    return total


def evflownet(h: int, w: int, c: int = 32, *, bins: int = 2, n: int = 4, res: int = 2) -> int:
    """ANN EV-FlowNet: stride-2 encoders, residual blocks (2 convs each), decoders, predictions."""
    enc = sum(conv(h // 2**i, w // 2**i, bins if i == 0 else c * 2**i, c * 2 ** (i + 1), 3, stride=2) for i in range(n))
    bottom = c * 2**n
    return enc + res * 2 * conv(h // 2**n, w // 2**n, bottom, bottom, 3) + _decoders(h, w, c, n)


def spiking_rec_evflownet(h: int, w: int, c: int = 32, *, bins: int = 2, n: int = 4, res: int = 2) -> int:
    """Spiking recurrent EV-FlowNet: each encoder adds a recurrent cell (ff + rec C_out -> C_out convs)."""
    extra = sum(2 * conv(h // 2 ** (i + 1), w // 2 ** (i + 1), c * 2 ** (i + 1), c * 2 ** (i + 1), 3) for i in range(n))
    return evflownet(h, w, c, bins=bins, n=n, res=res) + extra


MACS = {
    "lif_firenet": lambda h, w, c=32: firenet_family(h, w, c, hidden_convs=8),
    "lif_firenet_short": lambda h, w, c=32: firenet_family(h, w, c, hidden_convs=6),
    "lif_fireflownet": lambda h, w, c=32: firenet_family(h, w, c, hidden_convs=6),
    "plif_firenet": lambda h, w, c=32: firenet_family(h, w, c, hidden_convs=8),
    "alif_firenet": lambda h, w, c=32: firenet_family(h, w, c, hidden_convs=8),
    "xlif_firenet": lambda h, w, c=32: firenet_family(h, w, c, hidden_convs=8),
    "firenet": lambda h, w, c=32: ann_firenet(h, w, c),
    "evflownet": lambda h, w, c=32: evflownet(h, w, c),
    "spiking_rec_evflownet": lambda h, w, c=32: spiking_rec_evflownet(h, w, c),
}

#: Spiking neurons per sample and pass (one per channel and pixel of every spiking layer).
NEURONS = {
    "lif_firenet": lambda h, w, c=32: 7 * c * h * w,
    "lif_firenet_short": lambda h, w, c=32: 5 * c * h * w,
    "lif_fireflownet": lambda h, w, c=32: 7 * c * h * w,
    "plif_firenet": lambda h, w, c=32: 7 * c * h * w,
    "alif_firenet": lambda h, w, c=32: 7 * c * h * w,
    "xlif_firenet": lambda h, w, c=32: 7 * c * h * w,
    "firenet": lambda h, w, c=32: 0,
    "evflownet": lambda h, w, c=32: 0,
}


def _spiking_unet_neurons(h: int, w: int, c: int = 32, n: int = 4, res: int = 2) -> int:
    enc = sum(2 * c * 2 ** (i + 1) * (h // 2 ** (i + 1)) * (w // 2 ** (i + 1)) for i in range(n))
    bottom = res * 2 * c * 2**n * (h // 2**n) * (w // 2**n)
    dec = sum(c * 2 ** (n - 1 - i) * (h // 2 ** (n - 1 - i)) * (w // 2 ** (n - 1 - i)) for i in range(n))
    return enc + bottom + dec


NEURONS["spiking_rec_evflownet"] = _spiking_unet_neurons
