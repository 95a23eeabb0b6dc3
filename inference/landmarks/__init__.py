"""Face detection and 2D landmarks (`detect`), and where landmark schemes lie on FLAME (`embedding`)."""
