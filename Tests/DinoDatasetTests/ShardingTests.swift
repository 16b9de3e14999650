import DinoDataset
import Foundation
import Testing

@Suite("Sharding")
struct ShardingTests {
    @Test("for every N and unit count, the shards are disjoint, complete and stable")
    func partition() throws {
        for units in [0, 1, 2, 7, 64, 1000] {
            for count in [1, 2, 3, 5, 8, 64, 1001] {
                var owner = [Int](repeating: -1, count: units)
                for index in 0..<count {
                    let shard = try ShardSpec(index: index, count: count)
                    for unit in 0..<units where shard.owns(unit: unit) {
                        #expect(owner[unit] == -1, "unit \(unit) owned twice for N=\(count)")
                        owner[unit] = index
                    }
                }
                #expect(!owner.contains(-1), "some unit has no owner for \(units) units, N=\(count)")
                // Stable: the owner depends only on the unit number and N.
                #expect(owner == (0..<units).map { $0 % count })
            }
        }
    }

    @Test("a plan's units split across shards cover the plan exactly once")
    func planPartition() throws {
        let folder = try TemporaryFolder()
        let list = try folder.write("l.txt", Data((0..<103).map { "img\($0).jpg" }.joined(separator: "\n").utf8))
        let plan = try DatasetPlan(inputs: [list], chunkSize: 10)
        for count in 1...12 {
            var keys: [String] = []
            for index in 0..<count {
                for unit in plan.units(of: try ShardSpec(index: index, count: count)) {
                    if case .files(let items) = unit.source { keys += items.map(\.key) }
                }
            }
            #expect(keys.count == 103 && Set(keys).count == 103, "N=\(count)")
        }
    }

    @Test("--shard I/N is parsed and checked")
    func parse() throws {
        #expect(try ShardSpec.parse("3/8") == ShardSpec(index: 3, count: 8))
        for bad in ["8/8", "-1/4", "1/0", "1", "a/b", "1/2/3", ""] {
            #expect(throws: DatasetError.self, "\(bad)") { try ShardSpec.parse(bad) }
        }
    }

    @Test("scheduler variables: Slurm arrays (count, min/max, step) and Kubernetes indexed jobs")
    func environment() throws {
        func resolve(_ environment: [String: String], explicit: String? = nil, count: Int? = nil) throws -> ShardSpec {
            try ShardSpec.resolve(explicit: explicit, count: count, environment: environment).shard
        }
        #expect(try resolve([:]) == .whole)
        #expect(try resolve(["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "8"], explicit: "2/4") == ShardSpec(index: 2, count: 4))
        #expect(try resolve(["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8"]) == ShardSpec(index: 5, count: 8))
        #expect(try resolve(["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8"])
            == ShardSpec(index: 4, count: 8))
        #expect(try resolve(["SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "12",
                             "SLURM_ARRAY_TASK_STEP": "4"]) == ShardSpec(index: 3, count: 4))
        #expect(try resolve(["SLURM_ARRAY_TASK_ID": "15", "SLURM_ARRAY_TASK_COUNT": "4"], count: 16) == ShardSpec(index: 15, count: 16))
        #expect(try resolve(["JOB_COMPLETION_INDEX": "9"], count: 10) == ShardSpec(index: 9, count: 10))
        #expect(try ShardSpec.resolve(explicit: nil, count: 10, environment: ["JOB_COMPLETION_INDEX": "9"]).source == "JOB_COMPLETION_INDEX")

        let refused: [(String?, Int?, [String: String])] = [
            (nil, nil, ["JOB_COMPLETION_INDEX": "3"]),                                   // count unknown
            (nil, 3, ["JOB_COMPLETION_INDEX": "3"]),                                     // index out of range
            (nil, nil, ["JOB_COMPLETION_INDEX": "x"]),
            (nil, nil, ["SLURM_ARRAY_TASK_ID": "2"]),                                    // count unknown
            (nil, nil, ["SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "8"]),     // out of range
            (nil, nil, ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
                        "SLURM_ARRAY_TASK_COUNT": "4"]),                                 // not on the step
            (nil, 4, ["SLURM_ARRAY_TASK_ID": "1", "JOB_COMPLETION_INDEX": "1"]),         // ambiguous
            ("1/4", 8, [:]),                                                             // counts differ
            (nil, 4, [:]),                                                               // a count without an index
        ]
        for (explicit, count, environment) in refused {
            #expect(throws: DatasetError.self, "\(String(describing: explicit)) \(String(describing: count)) \(environment)") {
                try ShardSpec.resolve(explicit: explicit, count: count, environment: environment)
            }
        }
    }
}
