"""Local services for the embedded default and the test suite: PostGIS and an S3 server."""
