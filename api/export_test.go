package api

// PlainDecimalLen is plainDecimalLen, for the tests of package api_test.
var PlainDecimalLen = plainDecimalLen
