module mytom/pause

go 1.26.0
