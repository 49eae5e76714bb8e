"""Running a plan (DESIGN §2, §12): units of work, the loop that schedules them, the single writer.

A unit (:mod:`.unit`) is (subject, model, that model's pending cells for the
subject) and turns into plain records; it reads no files and touches no
database. The scheduling loop lives in :mod:`mskbench.runner`; the writer
(:mod:`.writer`) commits one transaction per (subject, cell).
"""
