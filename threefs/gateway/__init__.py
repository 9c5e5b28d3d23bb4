"""Protocol gateways over the threefs namespace: S3 (`threefs.gateway.s3`) and WebHDFS (`threefs.gateway.hdfs`)."""
