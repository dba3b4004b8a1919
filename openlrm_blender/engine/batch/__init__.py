"""Many images in one command: each image's output decided up front (``plan``), one image
converted to its file (``convert``), on this machine or spread over a Ray cluster
(``cluster``)."""
