package hostpb

// Counter returns the value of the counter stage/name in the probe, 0 if
// it has none.
func (r *ProbeReply) Counter(stage, name string) uint64 {
	for _, c := range r.GetCounters() {
		if c.Stage == stage && c.Name == name {
			return c.Value
		}
	}
	return 0
}

// ByStage groups counters by stage, the stages in the order they first
// appear.
func ByStage(cs []*Counter) (stages []string, byStage map[string][]*Counter) {
	byStage = map[string][]*Counter{}
	for _, c := range cs {
		if _, ok := byStage[c.Stage]; !ok {
			stages = append(stages, c.Stage)
		}
		byStage[c.Stage] = append(byStage[c.Stage], c)
	}
	return stages, byStage
}
