"""S3-compatible endpoint: buckets are top-level directories, keys are paths below them."""
