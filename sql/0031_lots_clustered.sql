-- /v1/vacancies reads lots near a point through the GiST index on earth_point; with lots stored in
-- insertion order, the ~2,500 rows of a 2 km query lie on ~1,000 heap pages. Store them in the
-- index's order instead (CLUSTER), and leave room on each page so that the gateway's counter
-- updates stay HOT and on the same page (a full page would move the row and undo the order).
-- CLUSTER orders the rows present now; the table remembers the index, so after a bulk load of
-- lots `CLUSTER lots` (or a database-wide `CLUSTER`) orders them again.
ALTER TABLE lots SET (fillfactor = 80);
CLUSTER lots USING lots_earth_point;
