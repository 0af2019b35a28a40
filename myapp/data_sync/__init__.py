"""The data sync engine behind `manage.py save_data`: which records to list (records), what an
archive holds (listing), the HTTP client (http), storing rows and files together (store),
the Save button's hooks (hooks), the log lines (report), and the pipeline tying them (engine).
"""
