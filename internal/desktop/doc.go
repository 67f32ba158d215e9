// Package desktop owns what happens when a person, not a service manager,
// starts stompbox: it guesses whether the binary was double-clicked (from
// Explorer on Windows, Finder on macOS), puts the data folder beside the
// executable then, opens a browser, and lists the addresses under which
// other machines on the network reach the server.
//
// What it promises: the double-click answer is a guess from the process's
// surroundings (its arguments, parent, working directory), and is no
// whenever arguments were given; it reads local interfaces only, and
// starts a browser without waiting for it.
//
// It owns no interface. It is a leaf: it imports no package of stompbox
// (layout_test.go).
package desktop
