"""File and media I/O: atomic writes, images, videos and frame folders; the only place pixels are converted."""
