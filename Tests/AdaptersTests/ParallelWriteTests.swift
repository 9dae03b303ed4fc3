import Foundation
import SafeTensors
import Testing
@testable import Adapters

/// The writer produces modules on several threads (TensorProduction): the file must be the one a
/// single producer writes, byte for byte, and errors must be the first in file order.
struct ParallelWriteTests {
    static let kohya = "adapters/kohya/kohya_from_peft.safetensors"

    /// Writes `adapter` with `workers` producers into a fresh folder; returns the file's bytes.
    static func written(_ adapter: Adapter, format: OutputFormat = .kohya, workers: Int) throws -> [UInt8] {
        let path = Fixtures.temporaryFolder().appendingPathComponent("out.safetensors").path
        try AdapterWriter.write(adapter, format: format, to: path, options: WriteOptions(workers: workers))
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// `adapter` whose module `index` takes `delay(index)` seconds to load and, where `poisoned` says
    /// so, holds a NaN in its down factor.
    static func slowed(_ adapter: Adapter, delay: @escaping @Sendable (Int) -> Double,
                       poisoned: Set<Int> = []) -> Adapter {
        var result = adapter
        result.replaceSource(TransformedFactors(base: adapter) { index, factors in
            Thread.sleep(forTimeInterval: delay(index))
            guard poisoned.contains(index), case var .lowRank(l) = factors else { return factors }
            l.down[0] = .nan
            return .lowRank(l)
        })
        return result
    }

    @Test(arguments: ["loha", "loha-conv", "loha-tucker"])
    func lohaConversionIsByteIdenticalToOneWorker(_ id: String) throws {
        let source = try AdapterReader.read(Fixtures.path("adapters/lycoris/\(id).safetensors"))
        for format in [OutputFormat.kohya, .peft] {
            let (converted, _) = try Converter.convert(source, ConvertRequest(to: format))
            let serial = try Self.written(converted, format: format, workers: 1)
            #expect(try Self.written(converted, format: format, workers: 2) == serial, "\(id) → \(format)")
            #expect(try Self.written(converted, format: format, workers: 3) == serial, "\(id) → \(format)")
        }
    }

    /// Modules of very different costs finish out of order; the file is still the serial one (a
    /// hand-over in completion order would misplace the fast modules' tensors).
    @Test func unevenModulesAreWrittenInFileOrder() throws {
        let adapter = try AdapterReader.read(Fixtures.path(Self.kohya))
        #expect(adapter.modules.count > 20)
        let serial = try Self.written(adapter, workers: 1)
        let uneven = Self.slowed(adapter) { $0 % 5 == 0 ? 0.02 : 0 }
        #expect(try Self.written(uneven, workers: 3) == serial)
        #expect(try Self.written(uneven, format: .peft, workers: 3) == (try Self.written(adapter, format: .peft, workers: 1)))
    }

    /// The first pass that hashes the data for outputs that cannot be rewritten (standard output).
    @Test func dataHashDoesNotDependOnWorkers() throws {
        let adapter = Self.slowed(try AdapterReader.read(Fixtures.path(Self.kohya))) { $0 % 7 == 0 ? 0.01 : 0 }
        let plan = try AdapterWriter.plan(adapter, format: .kohya, options: WriteOptions())
        let serial = try AdapterWriter.hashData(plan, adapter: adapter, options: WriteOptions(workers: 1))
        #expect(try AdapterWriter.hashData(plan, adapter: adapter, options: WriteOptions(workers: 3)) == serial)
    }

    /// A NaN in a module in the middle: the error names that module and no file (nor temporary) is left.
    @Test func errorInTheMiddleNamesTheModuleAndWritesNothing() throws {
        let adapter = try AdapterReader.read(Fixtures.path(Self.kohya))
        let middle = adapter.modules.count / 2
        let broken = Self.slowed(adapter, delay: { _ in 0 }, poisoned: [middle])
        let folder = Fixtures.temporaryFolder()
        let path = folder.appendingPathComponent("out.safetensors").path
        let error = #expect(throws: AdapterError.self) {
            try AdapterWriter.write(broken, format: .kohya, to: path, options: WriteOptions(workers: 2))
        }
        #expect(error?.message.hasPrefix(adapter.modules[middle].name + ":") == true, "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    /// Two broken modules, the earlier one slow: the error reported is the earlier one's, although the
    /// later one fails first in time.
    @Test func firstErrorInFileOrderWins() throws {
        let adapter = try AdapterReader.read(Fixtures.path(Self.kohya))
        let plan = try AdapterWriter.plan(adapter, format: .kohya, options: WriteOptions())
        let (_, layout) = try SafeTensorsWriter.header(metadata: [:], tensors: plan.map(\.spec))
        let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.spec.name, $0.module) })
        var order: [Int] = []   // modules in file order
        for info in layout where order.last != byName[info.name]! { order.append(byName[info.name]!) }
        let (slow, fast) = (order[3], order[4])
        let broken = Self.slowed(adapter, delay: { $0 == slow ? 0.3 : 0 }, poisoned: [slow, fast])
        let path = Fixtures.temporaryFolder().appendingPathComponent("out.safetensors").path
        let error = #expect(throws: AdapterError.self) {
            try AdapterWriter.write(broken, format: .kohya, to: path, options: WriteOptions(workers: 3))
        }
        #expect(error?.message.hasPrefix(adapter.modules[slow].name + ":") == true, "\(String(describing: error))")
    }

    @Test func workerCount() {
        #expect(ProductionWorkers.count(items: 100, requested: 3) == 3)
        #expect(ProductionWorkers.count(items: 2, requested: 3) == 2)
        #expect(ProductionWorkers.count(items: 0, requested: nil) == 1)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        #expect(ProductionWorkers.count(items: 100, requested: nil) == min(cores, ProductionWorkers.maximum))
    }
}
