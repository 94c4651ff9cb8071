-- Money meets the gate sessions (sql/0010_sessions.sql): the arrears run moves overdue `invoiced`
-- sessions to `in_arrears` without scanning every session.
CREATE INDEX sessions_invoiced ON sessions (session_id) WHERE state = 'invoiced';
