package bench

import "slices"

// RoundRatios gives the median, lowest and highest of target a's requests/s
// as a percentage of target b's over interleaved rounds (perRound[round]
// [target]): on a shared machine the speed drifts within seconds, so a
// ratio is read per round as well as over the whole run.
func RoundRatios(perRound [][]float64, a, b int) (median, lo, hi float64) {
	ratios := make([]float64, len(perRound))
	for r, rps := range perRound {
		ratios[r] = 100 * rps[a] / rps[b]
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1]
}
