"""Test-set contamination of a pretraining corpus: find evaluation items in it, report them, write a clean copy.

normalise.py (the compared text form), index.py (hashes of the test items, matching a block), testsets.py
(test items through the task registry's readers), scan.py (streaming, report, clean copy; what the command
runs), record.py (the clean copy's contamination.json, read by pretrain).
"""
