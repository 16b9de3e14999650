/// Which part of a dataset one process handles: shard `index` of `count` (0-based).
///
/// The rule: the dataset is a list of units (each tar, then the file inputs in chunks, see
/// `DatasetPlan`), numbered from 0 in input order; shard `I` of `N` takes the units whose
/// number `u` has `u mod N == I`. Every unit has exactly one owner, so the shards are disjoint
/// and together complete, and the assignment depends only on the input list and `N`.
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    /// This shard's number, `0..<count`.
    public let index: Int
    /// Number of shards.
    public let count: Int

    /// Shard `index` of `count`.
    public init(index: Int, count: Int) throws(DatasetError) {
        guard count >= 1 else { throw .invalidShard(setting: "shard \(index)/\(count)", reason: "the shard count must be at least 1") }
        guard (0..<count).contains(index) else {
            throw .invalidShard(setting: "shard \(index)/\(count)", reason: "the index must be in 0..<\(count) (shards count from 0)")
        }
        self.index = index
        self.count = count
    }

    /// The whole dataset in one process.
    public static let whole = ShardSpec(uncheckedIndex: 0, count: 1)

    private init(uncheckedIndex: Int, count: Int) {
        index = uncheckedIndex
        self.count = count
    }

    /// `I/N`.
    public var description: String { "\(index)/\(count)" }

    /// Whether unit number `unit` belongs to this shard.
    public func owns(unit: Int) -> Bool { unit % count == index }

    /// Parses `I/N`.
    public static func parse(_ text: String) throws(DatasetError) -> ShardSpec {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw .invalidShard(setting: "--shard \(text)", reason: "expected I/N, such as 0/8")
        }
        do {
            return try ShardSpec(index: index, count: count)
        } catch {
            throw .invalidShard(setting: "--shard \(text)", reason: "the index must be in 0..<N and N at least 1 (shards count from 0)")
        }
    }

    /// The shard this process runs: `--shard I/N` when given; else a Slurm array task
    /// (`SLURM_ARRAY_TASK_ID`, numbered from `SLURM_ARRAY_TASK_MIN` in steps of
    /// `SLURM_ARRAY_TASK_STEP`, out of `--shard-count` or `SLURM_ARRAY_TASK_COUNT` or
    /// `MIN..MAX`); else a Kubernetes Indexed Job pod (`JOB_COMPLETION_INDEX` out of
    /// `--shard-count`); else the whole dataset. Returns the shard and where it came from.
    public static func resolve(explicit: String?, count: Int?, environment: [String: String]) throws(DatasetError) -> (shard: ShardSpec, source: String) {
        if let explicit {
            let shard = try parse(explicit)
            if let count, count != shard.count {
                throw .invalidShard(setting: "--shard \(explicit) --shard-count \(count)", reason: "the two counts differ")
            }
            return (shard, "--shard")
        }
        if let count, count < 1 {
            throw .invalidShard(setting: "--shard-count \(count)", reason: "must be at least 1")
        }
        let slurm = environment["SLURM_ARRAY_TASK_ID"]
        let kubernetes = environment["JOB_COMPLETION_INDEX"]
        if slurm != nil, kubernetes != nil {
            throw .invalidShard(setting: "SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX",
                                reason: "both are set, so the shard is ambiguous; pass --shard I/N")
        }
        if let slurm {
            return (try slurmShard(id: slurm, count: count, environment: environment), "SLURM_ARRAY_TASK_ID")
        }
        if let kubernetes {
            guard let index = Int(kubernetes) else {
                throw .invalidShard(setting: "JOB_COMPLETION_INDEX=\(kubernetes)", reason: "not an integer")
            }
            guard let count else {
                throw .invalidShard(setting: "JOB_COMPLETION_INDEX=\(kubernetes)",
                                    reason: "give --shard-count N (the Job's completions) so the shard count is known")
            }
            do {
                return (try ShardSpec(index: index, count: count), "JOB_COMPLETION_INDEX")
            } catch {
                throw .invalidShard(setting: "JOB_COMPLETION_INDEX=\(kubernetes) --shard-count \(count)",
                                    reason: "the index must be in 0..<\(count)")
            }
        }
        if let count, count != 1 {
            throw .invalidShard(setting: "--shard-count \(count)",
                                reason: "no shard index: pass --shard I/N, or run as a Slurm array task or a Kubernetes Indexed Job")
        }
        return (.whole, "default")
    }

    private static func slurmShard(id text: String, count: Int?, environment: [String: String]) throws(DatasetError) -> ShardSpec {
        func integer(_ name: String) throws(DatasetError) -> Int? {
            guard let value = environment[name] else { return nil }
            guard let number = Int(value) else { throw .invalidShard(setting: "\(name)=\(value)", reason: "not an integer") }
            return number
        }
        guard let id = Int(text) else { throw .invalidShard(setting: "SLURM_ARRAY_TASK_ID=\(text)", reason: "not an integer") }
        let minimum = try integer("SLURM_ARRAY_TASK_MIN") ?? 0
        let step = try integer("SLURM_ARRAY_TASK_STEP") ?? 1
        guard step >= 1, id >= minimum, (id - minimum) % step == 0 else {
            throw .invalidShard(setting: "SLURM_ARRAY_TASK_ID=\(id)",
                                reason: "not in the array \(minimum)-...:\(step); arrays must be ranges such as --array=0-15 (pass --shard for lists)")
        }
        let index = (id - minimum) / step
        var total = count
        if total == nil { total = try integer("SLURM_ARRAY_TASK_COUNT") }
        if total == nil, let maximum = try integer("SLURM_ARRAY_TASK_MAX") { total = (maximum - minimum) / step + 1 }
        guard let total else {
            throw .invalidShard(setting: "SLURM_ARRAY_TASK_ID=\(id)",
                                reason: "the array size is unknown: give --shard-count N or set SLURM_ARRAY_TASK_COUNT")
        }
        do {
            return try ShardSpec(index: index, count: total)
        } catch {
            throw .invalidShard(setting: "SLURM_ARRAY_TASK_ID=\(id)", reason: "task \(index) (from minimum \(minimum), step \(step)) is not in 0..<\(total)")
        }
    }
}
