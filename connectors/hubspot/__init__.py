"""hubspot"""
