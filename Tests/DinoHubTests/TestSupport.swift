import DinoHub
import Foundation
import Synchronization

/// A fresh folder under the system temporary directory, removed when released.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("DinoHubTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// A cache rooted inside this folder (never the user's real cache).
    var cache: HubCache { HubCache(root: url.appendingPathComponent("hub", isDirectory: true)) }
}

/// Collects progress reports from the client's background thread.
final class ProgressLog: Sendable {
    private let reports = Mutex<[HubProgress]>([])
    func record(_ progress: HubProgress) { reports.withLock { $0.append(progress) } }
    var all: [HubProgress] { reports.withLock { $0 } }
}

/// Repositories served by the test hub.
enum Fixtures {
    static let repositoryID = "test-org/tiny-dino"
    static let commitA = "0123456789abcdef0123456789abcdef01234567"
    static let commitB = "fedcba9876543210fedcba9876543210fedcba98"
    static let shardedCommit = "1111111111222222222233333333334444444444"

    /// Deterministic bytes that look like nothing in particular.
    static func bytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static let configA = Array(#"{"model_type": "dinov2_with_registers", "hidden_size": 8}"#.utf8)
    static let configB = Array(#"{"model_type": "dinov2_with_registers", "hidden_size": 16}"#.utf8)
    static let preprocessor = Array(#"{"crop_size": {"height": 224, "width": 224}}"#.utf8)
    static let weightsA = bytes(count: 300_000, seed: 1)
    static let weightsB = bytes(count: 200_000, seed: 2)

    /// `main` -> commit A (config, weights, preprocessor config); tag `v1.0` -> commit B
    /// (config and weights only).
    static func plainRepository() -> TestRepository {
        TestRepository(
            id: repositoryID, refs: ["main": commitA, "v1.0": commitB],
            commits: [
                commitA: ["config.json": configA, "model.safetensors": weightsA, "preprocessor_config.json": preprocessor],
                commitB: ["config.json": configB, "model.safetensors": weightsB],
            ])
    }

    static let shard1 = bytes(count: 150_000, seed: 3)
    static let shard2 = bytes(count: 120_000, seed: 4)
    static let shardIndex = Array("""
        {"metadata": {"total_size": 270000}, "weight_map": {
          "embeddings.patch_embeddings.projection.weight": "model-00001-of-00002.safetensors",
          "encoder.layer.0.norm1.weight": "model-00002-of-00002.safetensors",
          "embeddings.cls_token": "model-00001-of-00002.safetensors"}}
        """.utf8)

    /// No `model.safetensors`: an index and two shards.
    static func shardedRepository() -> TestRepository {
        TestRepository(
            id: "test-org/sharded-dino", refs: ["main": shardedCommit],
            commits: [
                shardedCommit: [
                    "config.json": configA, "model.safetensors.index.json": shardIndex,
                    "model-00001-of-00002.safetensors": shard1, "model-00002-of-00002.safetensors": shard2,
                ],
            ])
    }

    /// The blob name the hub gives a file: sha256 for LFS files, the git blob id otherwise.
    static func etag(of file: String, content: [UInt8]) -> String {
        TestRepository.isLFS(file) ? SHA256Hasher.hex(of: content) : TestHubServer.gitBlobID(content)
    }
}

/// A client for tests: explicit cache, endpoint and token, never the environment's.
func makeClient(_ endpoint: URL, cache: HubCache, token: String? = nil, offline: Bool = false,
                progress: (@Sendable (HubProgress) -> Void)? = nil) -> HubClient {
    HubClient(endpoint: endpoint, cache: cache, token: token, offline: offline, progress: progress)
}

/// Runs `body`, expecting it to throw a `HubError`, and returns the error.
func expectHubError(_ body: () throws(HubError) -> URL) -> HubError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}
