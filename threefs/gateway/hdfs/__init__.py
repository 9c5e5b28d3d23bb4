"""WebHDFS-compatible REST gateway (`threefs hdfs serve`): Hadoop's REST v1 API over the threefs namespace."""
