"""nst: consistent video neural style transfer."""
