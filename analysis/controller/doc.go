// Package controller runs LaneAnalyses in lanes-manager: while a lane's releasing members are
// all paused at a step it takes one measurement (analysis.Measure) every interval, keeps the
// step's count in the LaneAnalysis's status, and once the step has a verdict (analysis.Decide)
// approves every paused member (laneops.Approve), rolls the whole lane back (laneops.RollBack),
// or leaves the lane paused with a Warning Event. Its whole state is the status, so a restart or
// a leader failover resumes where it was; the verdict is written before it is acted upon, and the
// action is done again until the Completed condition says it was.
package controller
