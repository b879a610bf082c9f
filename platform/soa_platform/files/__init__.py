"""Files: per-tenant object storage with presigned transfers, quotas, verification and retention."""
