"""Running a trained network: engines, the video pipeline, jobs for files and folders, portable export."""
