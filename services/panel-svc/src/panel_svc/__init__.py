"""panel_svc"""
