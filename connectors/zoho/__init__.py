"""zoho"""
