"""Backups of the whole TOM: its database, its data products and the secret key its data needs,
as encrypted, deduplicated restic snapshots (`manage.py backup`). `create` takes one, `restore`
brings a TOM back as it was at one, `verify` proves the latest restores, `status` is what the
Jobs page, `/metrics` and `jobs check` show of them."""
