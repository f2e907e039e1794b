"""executor_worker"""
