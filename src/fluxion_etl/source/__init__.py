"""The source side: the stores' SQL Servers, reached over ODBC.

Connection strings per driver family (:mod:`.connection`), the drivers installed
(:mod:`.drivers`), the packaged query (:mod:`.query`), warehouse look-ups (:mod:`.warehouses`),
the pre-flight ``check`` (:mod:`.check`), the driver-message table (:mod:`.odbc_errors`) and the
fetch engines (:mod:`.engines`).
"""
