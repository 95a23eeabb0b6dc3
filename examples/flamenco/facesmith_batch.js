// Flamenco 3 job type: a Facesmith batch split into shards across the farm's workers, then merged.
// Put this file in the Manager's `scripts/` folder; submit with the settings below. Each worker needs a
// Facesmith checkout (the `facesmith` command) and read/write access to the input and output folders.
// Written against Flamenco 3's job-compiler API (author.Task, author.Command "exec"); not run here.
const JOB_TYPE = {
  label: "Facesmith batch",
  settings: [
    { key: "input", type: "string", subtype: "dir_path", required: true, description: "Folder of photos" },
    { key: "output", type: "string", subtype: "dir_path", required: true, description: "Folder for the heads" },
    { key: "shards", type: "int32", default: 8, description: "How many tasks the batch is split into" },
    { key: "facesmith", type: "string", default: "facesmith", description: "The command on the workers" },
    { key: "extra", type: "string", default: "--no-preview", description: "More batch options" },
  ],
};

function compileJob(job) {
  const s = job.settings;
  const extra = s.extra ? s.extra.split(" ").filter((a) => a) : [];
  const shards = [];
  for (let i = 1; i <= s.shards; i++) {
    const task = author.Task(`facesmith shard ${i}/${s.shards}`, "misc");
    const args = ["batch", s.input, s.output, "--shard", `${i}/${s.shards}`, ...extra];
    task.addCommand(author.Command("exec", { exe: s.facesmith, args: args }));
    job.addTask(task);
    shards.push(task);
  }
  const merge = author.Task("facesmith batch-merge", "misc");
  merge.addCommand(author.Command("exec", { exe: s.facesmith, args: ["batch-merge", s.output] }));
  for (const task of shards) merge.addDependency(task);
  job.addTask(merge);
}
