"""quickbooks"""
