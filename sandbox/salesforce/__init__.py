"""salesforce emulator"""
