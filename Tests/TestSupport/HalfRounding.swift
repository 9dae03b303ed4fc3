/// How far a file's fp16 values `got` are from the nearest fp16 of the exact values `expected`: elements
/// one fp16 step away (a sum rounded in another order lands on a neighbour) and elements farther (wrong).
/// A bake into an fp16 checkpoint is checked with both: none farther, few one step away.
public func halfRoundingSteps(_ got: [Float], _ expected: [Float]) -> (oneStep: Int, farther: Int) {
    guard got.count == expected.count else { return (0, max(got.count, expected.count)) }
    var oneStep = 0, farther = 0
    for (g, e) in zip(got, expected) where g != Float(Float16(e)) {
        let nearest = Float16(e)
        if g == Float(nearest.nextUp) || g == Float(nearest.nextDown) { oneStep += 1 } else { farther += 1 }
    }
    return (oneStep, farther)
}
