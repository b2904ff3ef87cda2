"""Rows of the access matrix, one module per room (``rows_<room>.py``), gathered by test_access_matrix.

A module defines ``ROWS`` (a list of ``tests.api.test_access_matrix.Row``), and may define
``SUBJECTS`` (placeholder name -> function of ``Subjects`` giving the id to put in the URL) and
``TEXTS`` (text key -> function of ``Subjects`` giving a text that must not leak).
"""
