package edge

// ClassifyClose is classifyClose, for the external tests.
var ClassifyClose = classifyClose
