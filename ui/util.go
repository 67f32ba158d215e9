package ui

import "strconv"

func roomIDString(id int64) string { return strconv.FormatInt(id, 10) }

// pressed is an aria-pressed value.
func pressed(on bool) string { return strconv.FormatBool(on) }
