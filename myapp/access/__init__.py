"""Who may open which door of the TOM: the checks this project adds in front of TOM Toolkit's
own views where they let in whom they should not (doors.py lists each, with the view and the
version it covers), applied by one middleware (middleware.py) before the view runs."""
