import Testing
@testable import Adapters

struct RankScheduleTests {
    /// docs/method.md, "Rank schedule": R = 64, r_min = 32, α = 1.
    @Test func paperTable() {
        let s = RankSchedule(maxRank: 64, minRank: 32)
        let table: [(Double, Int)] = [(0, 64), (1, 63), (250, 56), (500, 48), (750, 40), (968, 33), (969, 32), (999, 32), (1000, 32)]
        for (t, r) in table { #expect(s.rank(at: t) == r, "r(\(t))") }
    }

    /// The 25-step Euler inference timesteps of docs/method.md, "Rank schedule".
    @Test func inferenceTimesteps() {
        let s = RankSchedule(maxRank: 64, minRank: 32)
        let expected = [33, 34, 35, 37, 38, 39, 40, 42, 43, 44, 46, 47, 48, 49, 51, 52, 53, 55, 56, 57, 58, 60, 61, 62, 63]
        let timesteps = stride(from: 961.0, through: 1.0, by: -40.0)
        #expect(timesteps.map { s.rank(at: $0) } == expected)
    }

    @Test func nonLinearAlphaAndValidation() throws {
        let s = RankSchedule(maxRank: 8, minRank: 4, rankAlpha: 2)
        // ((1000 − 500) / 1000)² · 4 = 1 → 5
        #expect(s.rank(at: 500) == 5)
        #expect(throws: RankSchedule.ValidationError.self) { try RankSchedule(maxRank: 4, minRank: 8).validate() }
        #expect(throws: RankSchedule.ValidationError.self) { try RankSchedule(maxRank: 4, minRank: 1, rankAlpha: 0).validate() }
        #expect(!RankSchedule(maxRank: 4, minRank: 4).isMasked)
    }
}
