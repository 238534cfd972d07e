//go:build !race

package veritrail

const raceEnabled = false
