import Foundation

extension ExperimentReport {
    /// The report as a person reads it at a terminal; the HTML report shows the same strings.
    public var text: String {
        var lines: [String] = []
        for result in workflows {
            lines.append("workflow \(result.workflow)")
            lines.append("  " + pad("arm", 12) + pad("eligible", 10, right: true) + pad("exposed", 10, right: true) + pad("revenue/customer", 18, right: true))
            for arm in result.arms {
                lines.append(
                    "  " + pad(arm.name, 12) + pad(String(arm.assigned), 10, right: true)
                        + pad(arm.name == "holdout" ? "-" : String(arm.exposed), 10, right: true)
                        + pad(Self.money(arm.revenuePerCustomer), 18, right: true))
            }
            for conversion in result.conversions {
                lines.append("  conversion \(conversion)")
                for arm in result.arms {
                    var line = "    " + pad(arm.name, 10) + pad("\(arm.converted[conversion, default: 0])/\(arm.assigned)", 12, right: true)
                        + pad(Self.percent(arm.rate(conversion)), 9, right: true)
                    if let lift = result.lift(of: arm, for: conversion) { line += "   " + Self.describe(lift) }
                    if let median = arm.medianSecondsToConvert(conversion) { line += "   median time to convert \(Self.days(median))" }
                    lines.append(line)
                }
            }
            for guardrail in result.guardrails {
                let rates = result.arms.map { "\($0.name) \(Self.percent($0.guardrailRate(guardrail))) (\($0.guardrails[guardrail, default: 0]))" }
                lines.append("  guardrail \(guardrail): " + rates.joined(separator: ", "))
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    /// `lift +2.41 pts (95% CI -1.20 to +6.02), relative +48.1% (95% CI -20.0% to +190.2%)`
    public static func describe(_ lift: Lift) -> String {
        var text = "lift \(points(lift.absolute)) pts (95% CI \(points(lift.absoluteInterval.lowerBound)) to \(points(lift.absoluteInterval.upperBound)))"
        if let relative = lift.relative, let interval = lift.relativeInterval {
            text += ", relative \(signedPercent(relative)) (95% CI \(signedPercent(interval.lowerBound)) to \(signedPercent(interval.upperBound)))"
        }
        return text
    }

    public static func percent(_ rate: Double) -> String { String(format: "%.2f%%", rate * 100) }
    public static func points(_ difference: Double) -> String { String(format: "%+.2f", difference * 100) }
    public static func signedPercent(_ ratio: Double) -> String { String(format: "%+.1f%%", ratio * 100) }
    public static func money(_ amount: Double) -> String { String(format: "%.2f", amount) }
    public static func days(_ seconds: Double) -> String { String(format: "%.1f d", seconds / 86_400) }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let space = String(repeating: " ", count: max(0, width - text.count))
        return right ? space + text : text + space
    }
}
