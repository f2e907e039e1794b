"""operation_svc"""
