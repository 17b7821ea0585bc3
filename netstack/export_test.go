package netstack

// PlanTrains exposes planTrains to the external tests, which check its
// trains with nictest's independent segmenter.
var PlanTrains = planTrains
