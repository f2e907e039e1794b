/** Runs waiting for the signed-in person's decision, each shown as it will run. */
import { useState } from "react";
import { api } from "../../api/client";
import type { PendingApproval } from "../../api/types";
import { commandLine } from "../../commandLine";
import { ListState } from "../../components/ListState";
import { ProblemAlert } from "../../components/ProblemAlert";
import { Link } from "../../router";
import { useAction } from "../../useAction";
import { useResource } from "../../useResource";

function Decision({ item, decided }: { item: PendingApproval; decided: () => void }) {
  const [comment, setComment] = useState("");
  const action = useAction();
  const decide = (decision: "approve" | "reject") =>
    action.run(async () => {
      await api(`/executions/${item.execution_id}/approvals`, { method: "POST", body: { decision, comment } });
      decided();
    });
  const commentId = `comment-${item.execution_id}`;
  return (
    <li className="card">
      <h2>
        <Link href={`/executions/${item.execution_id}`}>{item.template_slug}</Link>
      </h2>
      <p>
        Asked by {item.submitted_by} on {new Date(item.requested_at).toLocaleString()};{" "}
        {item.approvals.filter((each) => each.decision === "approve").length} of {item.approvals_required} approvals
        {item.expires_at ? `, expires ${new Date(item.expires_at).toLocaleString()}` : ""}.
      </p>
      <p>Will run:</p>
      <pre className="argv">{item.argv ? commandLine(item.argv) : JSON.stringify(item.http_request, null, 2)}</pre>
      {action.problem ? <ProblemAlert error={action.problem} /> : null}
      <label htmlFor={commentId}>Comment</label>
      <input id={commentId} value={comment} onChange={(event) => setComment(event.target.value)} />
      <div className="actions">
        <button type="button" className="primary" disabled={action.busy} onClick={() => void decide("approve")}>
          Approve
        </button>
        <button type="button" className="danger" disabled={action.busy} onClick={() => void decide("reject")}>
          Reject
        </button>
      </div>
    </li>
  );
}

export function ApprovalsPage() {
  const inbox = useResource((signal) => api<{ items: PendingApproval[] }>("/approvals", { signal }), []);
  const items = inbox.data?.items ?? [];
  return (
    <section aria-labelledby="approvals-title">
      <h1 id="approvals-title">Approvals</h1>
      <ListState resource={inbox} count={items.length} what="The approvals" empty="Nothing waits for your decision." />
      <ul className="cards">
        {items.map((item) => (
          <Decision key={item.execution_id} item={item} decided={inbox.reload} />
        ))}
      </ul>
    </section>
  );
}
