package ui

import "strconv"

func roomIDString(id int64) string { return strconv.FormatInt(id, 10) }
