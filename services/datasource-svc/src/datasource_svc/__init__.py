"""datasource_svc"""
