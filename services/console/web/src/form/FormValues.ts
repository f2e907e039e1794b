import { createContext } from "react";

/** The form's current values, for widgets whose options depend on other fields. */
export const FormValues = createContext<Record<string, unknown>>({});
