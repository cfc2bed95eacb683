"""The ledger: a durable record of every submission, task and result, so nothing billed is ever lost.

`store` holds the logic (the `Ledger`); `backend` is the seam to the database, with `sqlite` (the default, one
file in the state dir) and `postgres` (shared by replicas) behind it; `spool` keeps task ids the database could
not take yet; `retention` prunes results past their keeping period.
"""
